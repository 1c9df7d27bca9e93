"""TLS settings for a KMIP client: the :class:`ssl.SSLContext` the transports connect with.

KMIP servers authenticate clients by certificate (mutual TLS), so a client context normally
carries the client's certificate and key as well as the CA that signed the server's
certificate. Errors in those files are reported as :class:`ValueError` naming the file, never
as OpenSSL's terse ``PEM lib`` and never with the passphrase in the message.
"""

from __future__ import annotations

import ssl
from pathlib import Path

__all__ = ["client_ssl_context"]


class _NoPassphrase(Exception):
    """Raised from the password callback when the key is encrypted and no passphrase was given."""


def _no_passphrase() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal, which a library must never do.
    raise _NoPassphrase


def client_ssl_context(
    *,
    ca: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    key_password: str | bytes | None = None,
    check_hostname: bool = True,
) -> ssl.SSLContext:
    """Build a client-side TLS context for talking to a KMIP server.

    :param ca: PEM file (or directory of hashed certificates) of the CA(s) that signed the
        server's certificate; ``None`` trusts the system's default store.
    :param cert: the client certificate (PEM), with its chain if any. ``key`` may be omitted
        when this file also holds the private key.
    :param key: the client's private key (PEM or PKCS#8).
    :param key_password: passphrase of an encrypted ``key``.
    :param check_hostname: check the server certificate names the host connected to (the
        transports pass the endpoint's host as ``server_hostname``). Only turn it off for a
        server addressed by a name its certificate does not carry; the chain is still verified.
    :returns: a context requiring TLS 1.2 or later and a server certificate that verifies.
    :raises ValueError: a file is missing or unreadable, the key is encrypted and the
        passphrase is wrong or missing, or the key does not match the certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # TLS 1.2 is the floor KMIP profiles require; OpenSSL negotiates 1.3 when the server has it.
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = check_hostname
    if ca is None:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    else:
        ca_path = Path(ca)
        try:
            if ca_path.is_dir():
                context.load_verify_locations(capath=str(ca_path))
            else:
                context.load_verify_locations(cafile=str(ca_path))
        except (OSError, ssl.SSLError) as error:
            raise ValueError(f"cannot load the CA certificates from {ca_path}: {_reason(error)}") from None
    if cert is None:
        if key is not None:
            raise ValueError("a client key was given without its certificate (cert=...)")
        if key_password is not None:
            raise ValueError("key_password was given without a client certificate and key")
        return context
    _load_identity(context, Path(cert), None if key is None else Path(key), key_password)
    return context


def _load_identity(context: ssl.SSLContext, cert: Path, key: Path | None, key_password: str | bytes | None) -> None:
    key_file = key if key is not None else cert
    # Read the files ourselves first: OpenSSL's messages for a missing or unreadable file do not
    # name it, and a clear "cannot read" beats a misleading "wrong passphrase".
    for path in {cert, key_file}:
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    password = _no_passphrase if key_password is None else key_password
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=None if key is None else str(key), password=password)
    except _NoPassphrase:
        raise ValueError(f"the private key in {key_file} is encrypted: give its passphrase (key_password)") from None
    except ssl.SSLError as error:
        # Errors are raised "from None": the passphrase must not reach a traceback's locals or
        # message, and OpenSSL's "PEM lib" adds nothing to what we say here.
        if key_password is not None and _is_encrypted(key_file):
            raise ValueError(f"cannot decrypt the private key in {key_file}: wrong passphrase?") from None
        raise ValueError(
            f"cannot load the client certificate {cert} and key {key_file}: {_reason(error)} "
            "(not PEM, or the key is not the certificate's)"
        ) from None
    except OSError as error:
        raise ValueError(f"cannot load the client certificate {cert} and key {key_file}: {_reason(error)}") from None


def _is_encrypted(path: Path) -> bool:
    try:
        return b"ENCRYPTED" in path.read_bytes()
    except OSError:
        return False


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason)
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)
