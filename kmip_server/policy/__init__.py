"""Access policy: who may do what to which objects (RBAC and ABAC), in ``policies/*.toml``.

The engine asks it through one gate (kmip_server/engine/access.py) with the values of
:mod:`.facts`; the rules are in :mod:`.model`, the file format in :mod:`.loader` and
``policies/README.md``. :data:`DEFAULT_POLICY` (and ``policies/default.toml``, which says the
same) is ownership: the creator owns an object, others do not see it, administrators may do
everything.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .facts import OPERATIONS, ApprovalRule, Decision, LocateFilter, NewObjectFacts, ObjectFacts, Principal
from .loader import PolicyError, load_policies, load_policy, parse_policy
from .model import Policy

if TYPE_CHECKING:
    from ..config import ServerConfig

DEFAULT_POLICY = Policy()


def server_policy(config: ServerConfig) -> Policy:
    """The policy a server with ``config`` serves: ``[policy] policy_file`` (a file, or a
    directory of ``*.toml``) or the default, with ``admin_identities`` as administrators."""
    path: Path | None = config.policy.policy_file
    if path is None:
        base = DEFAULT_POLICY
    elif path.is_dir():
        base = load_policies(path)
    else:
        base = load_policy(path)
    return base.with_administrators(config.policy.admin_identities)


__all__ = [
    "DEFAULT_POLICY",
    "OPERATIONS",
    "ApprovalRule",
    "Decision",
    "LocateFilter",
    "NewObjectFacts",
    "ObjectFacts",
    "Policy",
    "PolicyError",
    "Principal",
    "load_policies",
    "load_policy",
    "parse_policy",
    "server_policy",
]
