"""M-of-N approval of the requests the policy holds (see service.py); importing the package
declares its tables on the storage schema's MetaData."""

from __future__ import annotations

from . import store
from .service import (
    APPROVED,
    ApprovalError,
    ApprovalRequest,
    ApprovalService,
    Polled,
    Rule,
    Step,
    approval_needed_error,
    operation_name,
)

__all__ = [
    "APPROVED",
    "ApprovalError",
    "ApprovalRequest",
    "ApprovalService",
    "Polled",
    "Rule",
    "Step",
    "approval_needed_error",
    "operation_name",
    "store",
]
