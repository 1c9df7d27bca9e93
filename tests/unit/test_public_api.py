"""Pins the public names of ``kmip_client``: a change here is a change for every user."""

from __future__ import annotations

import inspect

import kmip_client
from kmip_client import aio, crypto_aio, crypto_client, envelope

EXPORTED = [
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

CLIENT_METHODS = [
    "activate",
    "add_attribute",
    "adjust_attribute",
    "asynchronous",
    "batch",
    "cancel",
    "certify",
    "check",
    "close",
    "create",
    "create_key_pair",
    "delete_attribute",
    "destroy",
    "discover_versions",
    "get",
    "get_attributes",
    "locate",
    "modify_attribute",
    "poll",
    "query",
    "recertify",
    "register_key",
    "register_opaque",
    "register_secret",
    "register_wrapped_key",
    "rekey",
    "rekey_key_pair",
    "revoke",
    "set_attribute",
    "validate",
    "version",
    "wait",
]

# The cryptographic services, a base class of each client (kmip_client.crypto_client / crypto_aio).
CRYPTO_METHODS = [
    "decrypt",
    "decrypt_many",
    "decryptor",
    "derive_key",
    "encrypt",
    "encrypt_many",
    "encryptor",
    "hash",
    "hasher",
    "mac",
    "mac_generator",
    "mac_verifier",
    "mac_verify",
    "rng",
    "rng_seed",
    "sign",
    "signer",
    "verifier",
    "verify",
]


def public(cls: type) -> list[str]:
    return sorted(name for name in vars(cls) if not name.startswith("_"))


def test_exported_names() -> None:
    assert kmip_client.__all__ == EXPORTED
    for name in EXPORTED:
        assert hasattr(kmip_client, name), name


def test_client_methods_and_their_async_twins() -> None:
    assert public(kmip_client.Client) == CLIENT_METHODS
    async_methods = public(aio.AsyncClient)
    assert async_methods == sorted([*(m for m in CLIENT_METHODS if m not in ("batch", "close")), "aclose"])
    for name in async_methods:
        if name not in ("version", "aclose"):
            blocking = inspect.signature(getattr(kmip_client.Client, name))
            assert inspect.signature(getattr(aio.AsyncClient, name)).parameters.keys() == blocking.parameters.keys()


def test_crypto_methods_and_their_async_twins() -> None:
    assert public(crypto_client.CryptoMethods) == CRYPTO_METHODS
    assert public(crypto_aio.AsyncCryptoMethods) == CRYPTO_METHODS
    assert issubclass(kmip_client.Client, crypto_client.CryptoMethods)
    assert issubclass(aio.AsyncClient, crypto_aio.AsyncCryptoMethods)
    for name in CRYPTO_METHODS:
        blocking = inspect.signature(getattr(kmip_client.Client, name))
        assert inspect.signature(getattr(aio.AsyncClient, name)).parameters.keys() == blocking.parameters.keys()


def test_every_public_name_is_documented() -> None:
    owners = (crypto_client.CryptoMethods, crypto_client.CryptoBatchItems, crypto_aio.AsyncCryptoMethods)
    for owner in (kmip_client.Client, kmip_client.Batch, aio.AsyncClient, envelope.Envelope, *owners):
        assert owner.__doc__, owner
        for name in public(owner):
            assert getattr(owner, name).__doc__, f"{owner.__name__}.{name}"
