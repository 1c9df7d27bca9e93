"""Strongroom's KMIP client library and the sans-I/O protocol layer it shares with the server.

    from kmip_client import Client

    with Client("kms.example.com:5696", ca="ca.crt", cert="app.crt", key="app.key") as kmip:
        uid = kmip.create("AES", 256, name="orders-db")
        key = kmip.get(uid).value
        sealed = kmip.encrypt(uid, b"data", mode="GCM", random_iv=True, tag_length=16)

:class:`Client` blocks (and is thread-safe); :class:`kmip_client.aio.AsyncClient` is its asyncio
twin. Failures raise :class:`KmipError` (and its subclasses), carrying the Result Reason.
"""

from __future__ import annotations

from .client import Batch, Client
from .crypto_calls import EncryptResult, VerifyResult
from .operations import BatchResult, KeyPair, ManagedObject, OperationPending, ServerInfo
from .protocol.errors import (
    CryptographicFailure,
    GeneralFailure,
    InvalidField,
    InvalidMessage,
    ItemNotFound,
    KmipError,
    OperationNotSupported,
    PermissionDenied,
    ProtocolError,
    WrongKeyLifecycleState,
)

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Batch",
    "BatchResult",
    "KeyPair",
    "ManagedObject",
    "ServerInfo",
    "OperationPending",
    "ApprovalsClient",
    "EncryptResult",
    "VerifyResult",
    "KmipError",
    "ProtocolError",
    "InvalidMessage",
    "InvalidField",
    "ItemNotFound",
    "PermissionDenied",
    "OperationNotSupported",
    "WrongKeyLifecycleState",
    "CryptographicFailure",
    "GeneralFailure",
    "__version__",
]


def __getattr__(name: str) -> object:
    # The approvals client (HTTPS) is imported on first use: most programs never approve.
    if name == "ApprovalsClient":
        from .approvals import ApprovalsClient

        return ApprovalsClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
