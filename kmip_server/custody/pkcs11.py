"""Key custody on a PKCS#11 token: the master key never leaves the token, the token does the crypto.

Blob format (version 1), what :meth:`Pkcs11Custody.wrap` returns::

    +---------+----------------+-------------------------------+
    | 0x01    | IV (12 bytes)  | AES-GCM ciphertext || tag(16) |
    +---------+----------------+-------------------------------+

The ciphertext and tag come from ``C_Encrypt`` with ``CKM_AES_GCM`` under the master key (an AES
secret key on the token), a 96-bit IV, a 128-bit tag and the caller's ``context`` as additional
authenticated data. So a blob only unwraps with the same master key *and* the same context; the
context itself is not stored in the blob. The version byte lets a later format (another
mechanism, a key-rotation header) be told apart from this one.

Why GCM and not ``CKM_AES_KEY_WRAP_PAD``: GCM authenticates the context natively (no home-made
MAC binding on top of RFC 5649), SoftHSM2 and python-pkcs11 (``GCMParams``; tested with 0.10.1)
both support it, and every mainstream HSM implements it.

Why the IV comes from ``os.urandom`` and not ``C_GenerateRandom``: a GCM IV must be unique, not
secret, and the kernel CSPRNG provides that; asking the token would add a second round trip to
every wrap (cheap on SoftHSM2, a network hop on a network HSM). With random 96-bit IVs NIST SP
800-38D allows 2**32 wraps per master key; rotate the master key well before that.
Caveat: some HSMs in FIPS mode refuse caller-chosen GCM IVs and generate their own; this class
does not support such tokens yet.

Processes and threads. A PKCS#11 library is initialised per process, and a process that inherits
an initialised library through ``fork()`` must not use it: **open the custody after fork**, in
the process that uses it (each server worker opens its own). An instance opened before a fork
refuses to work in the child (:class:`CustodyError`), and :meth:`Pkcs11Custody.open` in the child
re-initialises the library. Each instance has its own session, guarded by a lock, so it may be
shared between threads (calls are serialised).

PKCS#11 logins are per token per process, not per session, and a second ``C_Login`` fails with
"already logged in" whatever the PIN. So the login is held by one anchor session per token per
process, shared by reference count; a second :meth:`~Pkcs11Custody.open` in the same process
checks its PIN against a keyed hash of the PIN that logged in, so a wrong PIN is refused even
while another instance is logged in.

Speed: the master key is copied into a *session object* at open (``C_CopyObject`` with
``CKA_TOKEN=false``; the copy stays inside the token and is still sensitive and non-extractable).
SoftHSM2 re-checks a token object against its file (open + lock) on every operation; the copy halves the
cost of a wrap. If the token refuses the copy (``CKA_COPYABLE=false``), the token key is used.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import (
    DataInvalid,
    DataLenRange,
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    FunctionFailed,
    FunctionNotSupported,
    GeneralError,
    MultipleTokensReturned,
    NoSuchToken,
    PinIncorrect,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    RandomNoRNG,
    RandomSeedNotSupported,
    UserAlreadyLoggedIn,
    UserPinNotInitialized,
)
from pkcs11.mechanisms import GCMParams

from .base import (
    UNSPECIFIED_GENERATOR,
    CustodyError,
    CustodyUnavailable,
    KeyCustody,
    RandomGenerator,
    RsaKeyNumbers,
    SeedingNotSupported,
)

__all__ = ["BLOB_VERSION", "LibraryInfo", "Pkcs11Custody"]

BLOB_VERSION = 1
#: The private key attributes read after C_GenerateKeyPair, in RsaKeyNumbers' order.
_RSA_NUMBERS = (
    Attribute.MODULUS,
    Attribute.PUBLIC_EXPONENT,
    Attribute.PRIVATE_EXPONENT,
    Attribute.PRIME_1,
    Attribute.PRIME_2,
    Attribute.EXPONENT_1,
    Attribute.EXPONENT_2,
    Attribute.COEFFICIENT,
)
_HEADER = bytes([BLOB_VERSION])
_IV_LEN = 12
_TAG_LEN = 16
_TAG_BITS = _TAG_LEN * 8
_MIN_BLOB_LEN = len(_HEADER) + _IV_LEN + _TAG_LEN

# One message for every way a blob can fail to unwrap, so the error says nothing about which check
# failed. SoftHSM2 reports a GCM tag mismatch as CKR_GENERAL_ERROR, hence its place here.
_UNWRAP_FAILED = "cannot unwrap key value: the blob or its context was altered, or another master key wrapped it"
_INTEGRITY_ERRORS = (
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    DataInvalid,
    DataLenRange,
    GeneralError,
    FunctionFailed,
)

# Keys the hash of a PIN that logged in, so a later open can be checked against it; fresh per process.
_PIN_HASH_KEY = os.urandom(32)


@dataclass(frozen=True)
class LibraryInfo:
    """The library's CK_INFO (C_GetInfo), as it reported it when loaded: what the KMIP PKCS#11
    operation answers a client's C_GetInfo with."""

    cryptoki_version: tuple[int, int]
    manufacturer_id: str
    library_description: str
    library_version: tuple[int, int]


@dataclass
class _Login:
    """A token login shared by all instances on that token in this process."""

    anchor: Any  # the pkcs11 Session that called C_Login; closing it logs out
    pin_digest: bytes
    users: int = 1


@dataclass
class _LoadedLibrary:
    lib: Any
    softhsm_conf: str  # SOFTHSM2_CONF when the library was initialised here ("" if unset)


@dataclass
class _ProcessState:
    """What this process has initialised; replaced wholesale in a forked child."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    generation: int = 0
    libraries: dict[str, _LoadedLibrary] = field(default_factory=dict)
    logins: dict[tuple[str, bytes], _Login] = field(default_factory=dict)
    # Library paths a parent process had initialised: re-initialise before first use here.
    inherited: set[str] = field(default_factory=set)
    # The parent's sessions, kept referenced so the child never finalises (and logs out) them.
    graveyard: list[object] = field(default_factory=list)


_state = _ProcessState()


def _after_fork_in_child() -> None:
    global _state
    parent = _state
    inherited = set(parent.inherited) | set(parent.libraries) | set(getattr(pkcs11, "_loaded", {}))
    graveyard = [*parent.graveyard, *parent.libraries.values(), *parent.logins.values()]
    # A new lock: the parent's may have been held by another thread at the moment of fork.
    _state = _ProcessState(generation=parent.generation + 1, inherited=inherited, graveyard=graveyard)


os.register_at_fork(after_in_child=_after_fork_in_child)


def _is_softhsm(module: Path) -> bool:
    return "softhsm" in module.name.lower()


# SoftHSM2's C_GenerateRandom is its crypto backend's generator. Built on OpenSSL 1.1.1 or 3.x
# (the Debian package is) that is RAND_bytes: by default a CTR-DRBG on AES-256 (NIST SP
# 800-90A). Botan's generator differs, and other tokens do not tell which one they use.
_OPENSSL_CTR_DRBG = RandomGenerator(kind="drbg", drbg="ctr", cipher="aes", bits=256)


def _token_generator(module: Path) -> RandomGenerator:
    """What the token behind ``module`` generates random bytes with, as far as is known."""
    if not _is_softhsm(module):
        return UNSPECIFIED_GENERATOR
    try:
        image = module.read_bytes()  # the libraries it links against are named in it
    except OSError:
        return UNSPECIFIED_GENERATOR
    if b"libcrypto.so.3" in image or b"libcrypto.so.1.1" in image:
        return _OPENSSL_CTR_DRBG
    return UNSPECIFIED_GENERATOR


def _current_softhsm_conf() -> str:
    return os.environ.get("SOFTHSM2_CONF", "")


def softhsm_conf_in_use() -> str | None:
    """SOFTHSM2_CONF that SoftHSM2 was initialised with in this process, or None if not loaded here."""
    for path, loaded in _state.libraries.items():
        if _is_softhsm(Path(path)):
            return loaded.softhsm_conf
    return None


def _conf_hint(module: Path) -> str:
    if not _is_softhsm(module):
        return ""
    conf = _current_softhsm_conf()
    return f" (SOFTHSM2_CONF={conf})" if conf else " (SOFTHSM2_CONF is not set)"


def _reinitialise_inherited(lib: Any) -> None:
    """Make a library inherited through fork usable in this process (PKCS#11 requires C_Initialize)."""
    # A library that resets itself on fork reports "not initialised" to C_Finalize: nothing to undo.
    with contextlib.suppress(PKCS11Error):
        lib.finalize()
    try:
        lib.initialize()
    except PKCS11Error as exc:
        # python-pkcs11 has no exception class for CKR_CRYPTOKI_ALREADY_INITIALIZED: a library
        # that tracks forks itself may answer so, and is then ready to use.
        if "already initialized" not in str(exc):
            raise


def _load_library(module: Path) -> Any:
    """The initialised library (caller holds ``_state.lock``)."""
    key = str(module)
    loaded = _state.libraries.get(key)
    if loaded is not None:
        if _is_softhsm(module) and loaded.softhsm_conf != _current_softhsm_conf():
            raise CustodyUnavailable(
                f"SoftHSM2 was initialised in this process with SOFTHSM2_CONF={loaded.softhsm_conf or '(unset)'}; "
                "a process can use only one SoftHSM2 configuration (set it before the first open)"
            )
        return loaded.lib
    if not module.is_file():
        raise CustodyUnavailable(f"PKCS#11 library {module} not found")
    try:
        lib = pkcs11.lib(key)
        if key in _state.inherited:
            _reinitialise_inherited(lib)
            _state.inherited.discard(key)
    except (PKCS11Error, OSError) as exc:
        raise CustodyUnavailable(f"cannot initialise PKCS#11 library {module}: {exc}{_conf_hint(module)}") from exc
    _state.libraries[key] = _LoadedLibrary(lib, _current_softhsm_conf())
    return lib


def _find_token(lib: Any, module: Path, token_label: str) -> Any:
    try:
        return lib.get_token(token_label=token_label)
    except NoSuchToken:
        raise CustodyUnavailable(f"PKCS#11 token {token_label!r} not found in {module}{_conf_hint(module)}") from None
    except MultipleTokensReturned:
        raise CustodyUnavailable(f"several PKCS#11 tokens are labelled {token_label!r} in {module}") from None
    except PKCS11Error as exc:
        raise CustodyUnavailable(f"cannot list the tokens of {module}: {type(exc).__name__}") from exc


def _pin_digest(pin: str) -> bytes:
    return hmac.new(_PIN_HASH_KEY, pin.encode("utf-8"), hashlib.sha256).digest()


def _acquire_login(login_key: tuple[str, bytes], token: Any, token_label: str, pin: str) -> None:
    """Log in to the token, or join this process's existing login (caller holds ``_state.lock``)."""
    digest = _pin_digest(pin)
    wrong_pin = f"wrong PIN for PKCS#11 token {token_label!r}"
    login = _state.logins.get(login_key)
    if login is not None:
        if not hmac.compare_digest(login.pin_digest, digest):
            raise CustodyUnavailable(wrong_pin)
        login.users += 1
        return
    try:
        anchor = token.open(user_pin=pin)
    except (PinIncorrect, PinLenRange):
        raise CustodyUnavailable(wrong_pin) from None
    except PinLocked:
        raise CustodyUnavailable(
            f"the user PIN of PKCS#11 token {token_label!r} is locked after too many wrong attempts; "
            "the security officer must reset it"
        ) from None
    except UserPinNotInitialized:
        raise CustodyUnavailable(f"PKCS#11 token {token_label!r} has no user PIN yet (initialise the token)") from None
    except UserAlreadyLoggedIn:
        raise CustodyUnavailable(
            f"PKCS#11 token {token_label!r} is already logged in by other code in this process"
        ) from None
    except PKCS11Error as exc:
        raise CustodyUnavailable(f"cannot log in to PKCS#11 token {token_label!r}: {type(exc).__name__}") from exc
    _state.logins[login_key] = _Login(anchor=anchor, pin_digest=digest)


def _release_login(login_key: tuple[str, bytes]) -> None:
    """Drop one user of a login; the last one logs out (caller holds ``_state.lock``)."""
    login = _state.logins.get(login_key)
    if login is None:
        return
    login.users -= 1
    if login.users == 0:
        del _state.logins[login_key]
        # Closing the anchor logs out; a token that is already gone cannot refuse us anything more.
        with contextlib.suppress(PKCS11Error):
            login.anchor.close()


def _find_master_key(session: Any, token_label: str, label: str) -> tuple[Any, bytes]:
    """The master key object and its CKA_ID (b"" if none), after checking it is fit to be one."""
    where = f"master key {label!r} on PKCS#11 token {token_label!r}"
    # CKA_TOKEN=true: the session copies other instances in this process made carry the same label.
    template = {
        Attribute.CLASS: ObjectClass.SECRET_KEY,
        Attribute.KEY_TYPE: KeyType.AES,
        Attribute.LABEL: label,
        Attribute.TOKEN: True,
    }
    try:
        found = list(session.get_objects(template))  # exhausted, so the search is finalised here
    except PKCS11Error as exc:
        raise CustodyUnavailable(f"cannot look up {where}: {type(exc).__name__}") from exc
    if not found:
        raise CustodyUnavailable(f"{where} not found (an AES secret key with that label)")
    if len(found) > 1:
        raise CustodyUnavailable(f"{where} is ambiguous: several AES keys have that label")
    key = found[0]
    try:
        attrs = key.get_attributes([Attribute.SENSITIVE, Attribute.EXTRACTABLE, Attribute.ENCRYPT, Attribute.DECRYPT])
    except PKCS11Error as exc:
        raise CustodyUnavailable(f"cannot read the attributes of {where}: {type(exc).__name__}") from exc
    # A master key whose value can be read out of the token would defeat the point of custody.
    if not attrs.get(Attribute.SENSITIVE) or attrs.get(Attribute.EXTRACTABLE, True):
        raise CustodyUnavailable(f"{where} is extractable or not sensitive; refusing to use it")
    if not (attrs.get(Attribute.ENCRYPT) and attrs.get(Attribute.DECRYPT)):
        raise CustodyUnavailable(f"{where} does not allow both encryption and decryption")
    try:
        key_id = bytes(key[Attribute.ID] or b"")
    except PKCS11Error:
        key_id = b""
    return key, key_id


#: The label of the token's HMAC key that seals the audit trail.
AUDIT_KEY_LABEL = "strongroom-audit-mac"
_AUDIT_KEY_TEMPLATE = {
    Attribute.CLASS: ObjectClass.SECRET_KEY,
    Attribute.KEY_TYPE: KeyType.GENERIC_SECRET,
    Attribute.LABEL: AUDIT_KEY_LABEL,
    Attribute.TOKEN: True,
}


def _audit_key(session: Any, create: bool) -> Any:
    """The token's audit HMAC key (generated, sensitive and non-extractable, when ``create``
    and there is none yet); None when there is none."""
    found = list(session.get_objects(_AUDIT_KEY_TEMPLATE))
    if len(found) > 1:
        raise CustodyError(f"several keys on the token are labelled {AUDIT_KEY_LABEL!r}: the audit trail needs one")
    if found:
        return found[0]
    if not create:
        return None
    # The custody's own session is read-only (it only uses keys): a token object is made in a
    # read-write session of its own, then found again from the custody's session.
    with session.token.open(rw=True) as writer:
        _generate_audit_key(writer)
    return _audit_key(session, create=False)


def ensure_audit_key(writer: Any) -> None:
    """Make the audit key in the read-write session ``writer`` unless the token has one."""
    if not list(writer.get_objects(_AUDIT_KEY_TEMPLATE)):
        _generate_audit_key(writer)


def _generate_audit_key(writer: Any) -> None:
    writer.generate_key(
        KeyType.GENERIC_SECRET,
        256,
        label=AUDIT_KEY_LABEL,
        store=True,
        template={
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.VERIFY: True,
            Attribute.ENCRYPT: False,
            Attribute.DECRYPT: False,
        },
    )


def _session_copy(key: Any) -> Any:
    """A session-object copy of ``key`` for the hot path, or ``key`` itself if the token refuses."""
    try:
        return key.copy({Attribute.TOKEN: False})
    except PKCS11Error:
        return key


def _as_bytes(value: object, name: str) -> bytes:
    # python-pkcs11 treats any non-bytes input as an iterator of chunks: normalise first.
    if type(value) is bytes:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{name} must be bytes, not {type(value).__name__}")


class Pkcs11Custody(KeyCustody):
    """Master key on a PKCS#11 token; wrap/unwrap are AES-GCM operations performed by the token.

    Create with :meth:`open` (after any ``fork``); release with :meth:`close` or a ``with`` block.
    """

    def __init__(
        self,
        *,
        session: Any,
        key: Any,
        master_key_id: str,
        login_key: tuple[str, bytes],
        generation: int,
        generator: RandomGenerator = UNSPECIFIED_GENERATOR,
        library: Any = None,
    ) -> None:
        """Internal: use :meth:`open`."""
        self._library = library
        self._generator = generator
        self._session = session
        self._key: Any = key
        self._master_key_id = master_key_id
        self._login_key = login_key
        self._generation = generation
        self._lock = threading.Lock()
        self._audit_key: Any = None

    @classmethod
    def open(cls, module: Path | str, token_label: str, pin: str, master_key_label: str) -> Pkcs11Custody:
        """Load ``module``, log in to the token labelled ``token_label`` and find the master key.

        Raises :class:`CustodyUnavailable` with an operator-readable reason (library missing,
        token not found, wrong or locked PIN, master key missing or unfit). The PIN never
        appears in a message. For SoftHSM2, ``SOFTHSM2_CONF`` must be set before the first open
        in the process (see :func:`kmip_server.custody.softhsm.use_softhsm_conf`).
        """
        module = Path(module)
        with _state.lock:
            lib = _load_library(module)
            token = _find_token(lib, module, token_label)
            login_key = (str(module), bytes(token.serial))
            _acquire_login(login_key, token, token_label, pin)
            try:
                # Not logged in itself: the token-wide login from the anchor session covers it.
                session = token.open()
            except PKCS11Error as exc:
                _release_login(login_key)
                raise CustodyUnavailable(
                    f"cannot open a session on PKCS#11 token {token_label!r}: {type(exc).__name__}"
                ) from exc
            try:
                master, key_id = _find_master_key(session, token_label, master_key_label)
                key = _session_copy(master)
            except BaseException:
                with contextlib.suppress(PKCS11Error):
                    session.close()
                _release_login(login_key)
                raise
            generation = _state.generation
        master_key_id = f"pkcs11:{token_label}/{master_key_label}"
        if key_id:
            master_key_id += f"#{key_id.hex()}"
        return cls(
            session=session,
            key=key,
            master_key_id=master_key_id,
            login_key=login_key,
            generation=generation,
            generator=_token_generator(module),
            library=lib,
        )

    @property
    def master_key_id(self) -> str:
        """``pkcs11:<token label>/<key label>#<CKA_ID hex>``: names the key, reveals nothing of it."""
        return self._master_key_id

    @property
    def library_info(self) -> LibraryInfo:
        """The PKCS#11 library's CK_INFO (python-pkcs11 reads it with C_GetInfo at load)."""
        lib = self._library
        return LibraryInfo(lib.cryptoki_version, lib.manufacturer_id, lib.library_description, lib.library_version)

    @property
    def random_generator(self) -> RandomGenerator:
        """SoftHSM2 on OpenSSL: a CTR-DRBG on AES-256; other tokens: unspecified."""
        return self._generator

    def _live_key(self) -> Any:
        """The key to operate with; caller holds ``self._lock``."""
        key = self._key
        if key is None:
            raise CustodyError("the PKCS#11 custody is closed")
        return key

    def _check_process(self) -> None:
        # Checked before taking self._lock, which a parent thread may have held at fork time.
        if self._generation != _state.generation:
            raise CustodyError("this PKCS#11 custody was opened before fork; open a new one in this process")

    def wrap(self, plaintext: bytes, context: bytes) -> bytes:
        """AES-GCM-encrypt ``plaintext`` on the token with ``context`` as AAD; see the module doc."""
        plaintext = _as_bytes(plaintext, "plaintext")
        param = GCMParams(os.urandom(_IV_LEN), _as_bytes(context, "context"), _TAG_BITS)
        self._check_process()
        with self._lock:
            key = self._live_key()
            try:
                sealed: bytes = key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=param)
            except PKCS11Error as exc:
                raise CustodyError(f"the PKCS#11 token failed to wrap a key value ({type(exc).__name__})") from exc
        if len(sealed) != len(plaintext) + _TAG_LEN:
            raise CustodyError("the PKCS#11 token returned a malformed AES-GCM result")
        return _HEADER + param.nonce + sealed

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Decrypt-and-verify a :meth:`wrap` blob on the token; :class:`CustodyError` if it fails."""
        blob = _as_bytes(blob, "blob")
        context = _as_bytes(context, "context")
        if len(blob) < _MIN_BLOB_LEN or blob[0] != BLOB_VERSION:
            raise CustodyError(_UNWRAP_FAILED)
        param = GCMParams(blob[1 : 1 + _IV_LEN], context, _TAG_BITS)
        sealed = blob[1 + _IV_LEN :]
        self._check_process()
        with self._lock:
            key = self._live_key()
            try:
                plaintext: bytes = key.decrypt(sealed, mechanism=Mechanism.AES_GCM, mechanism_param=param)
            except _INTEGRITY_ERRORS:
                raise CustodyError(_UNWRAP_FAILED) from None
            except PKCS11Error as exc:
                raise CustodyError(f"the PKCS#11 token failed to unwrap a key value ({type(exc).__name__})") from exc
        if len(plaintext) != len(sealed) - _TAG_LEN:
            raise CustodyError(_UNWRAP_FAILED)
        return plaintext

    def random(self, length: int) -> bytes:
        """``length`` bytes from the token's ``C_GenerateRandom``."""
        if length < 0:
            raise ValueError("length must not be negative")
        if length == 0:
            return b""
        self._check_process()
        with self._lock:
            self._live_key()
            try:
                data: bytes = self._session.generate_random(length * 8)
            except PKCS11Error as exc:
                raise CustodyError(f"the PKCS#11 token failed to generate random bytes ({type(exc).__name__})") from exc
        if len(data) != length:
            raise CustodyError("the PKCS#11 token returned the wrong number of random bytes")
        return data

    def generate_rsa(self, bits: int, public_exponent: int) -> RsaKeyNumbers:
        """``C_GenerateKeyPair`` (CKM_RSA_PKCS_KEY_PAIR_GEN) on the token, as session objects
        that may be read (not sensitive): the numbers are read out and both objects destroyed
        at once. The key is then stored like every other value, wrapped under the master key. A
        token whose policy forbids readable private keys (many HSMs in their FIPS mode) fails
        here with :class:`CustodyError`."""
        exponent = public_exponent.to_bytes((public_exponent.bit_length() + 7) // 8, "big")
        self._check_process()
        with self._lock:
            self._live_key()
            try:
                public, private = self._session.generate_keypair(
                    KeyType.RSA,
                    bits,
                    store=False,
                    public_template={Attribute.PUBLIC_EXPONENT: exponent},
                    private_template={Attribute.SENSITIVE: False, Attribute.EXTRACTABLE: True},
                )
                try:
                    values = [int.from_bytes(bytes(private[name]), "big") for name in _RSA_NUMBERS]
                finally:
                    private.destroy()
                    public.destroy()
            except PKCS11Error as exc:
                raise CustodyError(f"the PKCS#11 token failed to generate an RSA key pair ({type(exc).__name__})") from exc
        return RsaKeyNumbers(*values)

    def seed_random(self, data: bytes) -> None:
        """Mix ``data`` into the token's generator with ``C_SeedRandom``.

        SoftHSM2 (2.6) accepts any seed, of any length, and hands it to its crypto backend
        (``RAND_seed`` on OpenSSL: the DRBG is reseeded with it mixed in). Tokens whose
        generator takes no outside seed answer
        ``CKR_RANDOM_SEED_NOT_SUPPORTED`` (or have no ``C_SeedRandom`` at all):
        :class:`SeedingNotSupported`.
        """
        data = _as_bytes(data, "data")
        self._check_process()
        with self._lock:
            self._live_key()
            try:
                self._session.seed_random(data)
            except (RandomSeedNotSupported, FunctionNotSupported, RandomNoRNG) as exc:
                raise SeedingNotSupported(
                    f"the PKCS#11 token does not take a seed for its generator ({type(exc).__name__})"
                ) from None
            except PKCS11Error as exc:
                raise CustodyError(f"the PKCS#11 token failed to seed its generator ({type(exc).__name__})") from exc

    def prepare_audit_key(self) -> None:
        """Find the audit HMAC key, generating it on the token if there is none (call it where
        the processes of a server take turns: engine/app.py opens the token under a lock, so
        two workers never both generate one)."""
        self._check_process()
        with self._lock:
            self._live_key()
            self._load_audit_key()

    def _load_audit_key(self) -> Any:
        """The session copy of the audit key; caller holds ``self._lock``."""
        if self._audit_key is None:
            try:
                self._audit_key = _session_copy(_audit_key(self._session, create=True))
            except PKCS11Error as exc:
                raise CustodyError(f"the PKCS#11 token failed to provide the audit key ({type(exc).__name__})") from exc
        return self._audit_key

    def audit_mac(self, data: bytes) -> bytes:
        """CKM_SHA256_HMAC of ``data`` by the token under its audit key (label
        :data:`AUDIT_KEY_LABEL`), generated on first use."""
        self._check_process()
        with self._lock:
            self._live_key()
            key = self._load_audit_key()
            try:
                return bytes(key.sign(data, mechanism=Mechanism.SHA256_HMAC))
            except PKCS11Error as exc:
                raise CustodyError(f"the PKCS#11 token failed to sign the audit trail ({type(exc).__name__})") from exc

    def close(self) -> None:
        """Close this instance's session (destroying the session copy of the key); idempotent."""
        if self._generation != _state.generation:
            # Inherited through fork: the session belongs to the parent, so leave the token alone.
            self._key = None
            return
        with self._lock:
            if self._key is None:
                return
            self._key = None
            self._audit_key = None
        with _state.lock:
            with contextlib.suppress(PKCS11Error):
                self._session.close()
            _release_login(self._login_key)

    def __enter__(self) -> Pkcs11Custody:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._key is None else "open"
        return f"<Pkcs11Custody {self._master_key_id} {state}>"
