"""The embedded SoftHSM2 token: created by ``strongroom init`` when no hardware HSM is configured.

Layout of a token directory (mode 0700)::

    <token_dir>/softhsm2.conf   generated configuration (rewritten whenever it is used, see below)
    <token_dir>/tokens/         SoftHSM2's file object store: the token and its master key

SoftHSM2 needs the token directory as a path in ``softhsm2.conf``, and resolves a relative one
against the process's working directory, so the file cannot name its directory relatively. A
data directory that is copied or moved would then carry a configuration naming the *original*
token: the copy's server would log in to, and write, the other directory's token. So the
generated file is regenerated for the place it actually lies in by :func:`use_softhsm_conf`,
before the library reads it: in ``strongroom serve``'s main process before the workers are
forked (which inherit ``SOFTHSM2_CONF`` and read the file when they initialise the library,
also when one is restarted), in every worker again (a no-op, the text is already right), and by
``init`` and ``restore``. The file is replaced atomically and only when its text differs, so
concurrent processes never see half a file. A configuration without Strongroom's header (an
operator's own) is left alone.

libsofthsm2 reads the file named by the ``SOFTHSM2_CONF`` environment variable once, when the
library is initialised (``C_Initialize``) in a process. So a process must call
:func:`use_softhsm_conf` before its first :meth:`Pkcs11Custody.open
<kmip_server.custody.pkcs11.Pkcs11Custody.open>`, and can use only one SoftHSM2 configuration
for its lifetime. Setting it in the server's main process before forking workers is the simplest
arrangement: each worker inherits the variable and opens its own custody after fork.

:func:`initialise_token` does its PKCS#11 work in a short-lived child Python process. That keeps
the caller's process free of an initialised PKCS#11 library (which a later ``fork`` would make
unusable in the children, and whose configuration could not be changed any more), and the PINs
reach the child through a pipe, never through a command line or the environment, so they never
show in a process list. The token is created with ``C_InitToken`` called directly (python-pkcs11
0.10 has no wrapper for it), rather than with ``softhsm2-util``, which takes PINs only as
arguments.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import CustodyError, CustodyUnavailable
from .pkcs11 import ensure_audit_key, softhsm_conf_in_use

__all__ = [
    "CONF_NAME",
    "DEFAULT_SOFTHSM_MODULE",
    "SOFTHSM_MODULE_CANDIDATES",
    "find_softhsm_module",
    "initialise_token",
    "refresh_softhsm_conf",
    "use_softhsm_conf",
]

log = logging.getLogger("strongroom.custody")

# Where distributions install libsofthsm2 (Debian/Ubuntu first: the supported platforms).
SOFTHSM_MODULE_CANDIDATES: tuple[Path, ...] = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/local/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib64/pkcs11/libsofthsm2.so"),
)

CONF_NAME = "softhsm2.conf"
_TOKENS_DIR = "tokens"
_LABEL_MAX = 32  # CK_TOKEN_INFO.label is 32 bytes, blank-padded
_PIN_MIN, _PIN_MAX = 4, 255  # SoftHSM2's limits
_MASTER_KEY_BITS = 256
_SETUP_TIMEOUT_S = 120


def find_softhsm_module() -> Path | None:
    """The first installed libsofthsm2.so among :data:`SOFTHSM_MODULE_CANDIDATES`, or None."""
    for candidate in SOFTHSM_MODULE_CANDIDATES:
        if candidate.is_file():
            return candidate
    return None


# Falls back to the Debian path so error messages name a sensible file when SoftHSM2 is absent.
DEFAULT_SOFTHSM_MODULE: Path = find_softhsm_module() or SOFTHSM_MODULE_CANDIDATES[0]


def use_softhsm_conf(conf: Path) -> None:
    """Point libsofthsm2 at ``conf`` for this process (sets ``SOFTHSM2_CONF``).

    Must run before the first ``Pkcs11Custody.open`` on SoftHSM2 in the process: the library reads
    the variable only when it is initialised. A configuration Strongroom generated is first made
    to name the token directory beside it (:func:`refresh_softhsm_conf`). Raises
    :class:`CustodyUnavailable` if the file is missing or cannot be rewritten, or if SoftHSM2 is
    already initialised here with another configuration.
    """
    path = Path(conf).resolve()
    if not path.is_file():
        raise CustodyUnavailable(f"SoftHSM2 configuration {path} not found (run `strongroom init`)")
    try:
        refresh_softhsm_conf(path)
    except OSError as exc:
        raise CustodyUnavailable(f"cannot rewrite SoftHSM2 configuration {path}: {exc.strerror or exc}") from None
    in_use = softhsm_conf_in_use()
    if in_use is not None and in_use != str(path):
        raise CustodyUnavailable(
            f"SoftHSM2 is already initialised in this process with SOFTHSM2_CONF={in_use or '(unset)'}; "
            f"cannot switch to {path}"
        )
    os.environ["SOFTHSM2_CONF"] = str(path)


def _check_text(value: str, what: str, max_bytes: int) -> None:
    encoded = value.encode("utf-8")
    if not encoded or len(encoded) > max_bytes:
        raise ValueError(f"{what} must be 1 to {max_bytes} bytes of UTF-8")
    # The token blank-pads labels, and python-pkcs11 strips the padding when reading them back.
    if value != value.strip() or any(ch in value for ch in "\r\n\0"):
        raise ValueError(f"{what} must not start or end with spaces or contain line breaks")


def _check_pin(pin: str, what: str) -> None:
    # Deliberately silent about the value: only its length is wrong.
    if not (_PIN_MIN <= len(pin.encode("utf-8")) <= _PIN_MAX):
        raise ValueError(f"{what} must be {_PIN_MIN} to {_PIN_MAX} bytes long")


# The first line of every softhsm2.conf Strongroom writes: the mark of a file it may regenerate.
_GENERATED_MARK = "# Generated by Strongroom (kmip_server.custody.softhsm)"
_TOKENDIR_KEY = "directories.tokendir"


def _conf_text(tokens: Path) -> str:
    if any(ch in str(tokens) for ch in "\r\n"):
        raise ValueError("token directory path must not contain line breaks")
    return (
        f"{_GENERATED_MARK}; rewritten for the directory it is in\n"
        "# whenever Strongroom uses it (init, serve, restore): edits are lost.\n"
        f"{_TOKENDIR_KEY} = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
        # A forked child starts from a clean library state instead of the parent's sessions.
        "library.reset_on_fork = true\n"
    )


def _write_conf(conf: Path, text: str) -> None:
    """Write ``conf`` atomically (mode 0600), leaving an identical file untouched."""
    if conf.is_file() and conf.read_text(encoding="utf-8") == text:
        return
    fd, tmp = tempfile.mkstemp(prefix=".softhsm2.conf.", dir=conf.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, conf)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _tokendir_of(text: str) -> str | None:
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == _TOKENDIR_KEY:
            return value.strip()
    return None


def refresh_softhsm_conf(conf: Path, *, warn: bool = True) -> bool:
    """Make a ``softhsm2.conf`` Strongroom generated name the ``tokens`` directory beside it.

    A data directory that was copied or moved carries a file naming the token directory where it
    was made; this rewrites it (atomically, mode 0600) for where it is now, and (if ``warn``)
    logs a warning naming both. A file without Strongroom's header, or that already names its own token
    directory, is left untouched. Returns whether the file was rewritten.
    """
    conf = Path(conf).resolve()
    try:
        text = conf.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    if not text.startswith(_GENERATED_MARK):
        return False
    tokens = conf.parent / _TOKENS_DIR
    wanted = _conf_text(tokens)
    if text == wanted:
        return False
    before = _tokendir_of(text)
    _write_conf(conf, wanted)
    if warn and before is not None and before != str(tokens):
        log.warning(
            "%s named the token directory %s (where the data directory was made, copied or moved from); "
            "rewritten to name %s",
            conf,
            before,
            tokens,
        )
    return True


@contextmanager
def _exclusive(token_dir: Path) -> Iterator[None]:
    """Serialise initialisations of one token directory (two at once could create two tokens)."""
    fd = os.open(token_dir / ".init.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def initialise_token(
    token_dir: Path,
    *,
    label: str,
    pin: str,
    so_pin: str,
    master_key_label: str,
    module: Path = DEFAULT_SOFTHSM_MODULE,
) -> Path:
    """Create (or keep) the SoftHSM2 token in ``token_dir`` and its master key; returns the conf path.

    Idempotent and never destructive: an existing token with ``label`` is kept (``so_pin`` is then
    only used if its user PIN was never set), and an existing AES key labelled
    ``master_key_label`` is kept. A new master key is AES-256, generated in the token: token
    object, private, sensitive, never extractable, allowed to encrypt/decrypt/wrap/unwrap, with a
    random 16-byte CKA_ID.

    Raises ``ValueError`` for unusable arguments, :class:`CustodyUnavailable` if SoftHSM2 is
    missing or refuses (e.g. wrong PIN for an existing token), :class:`CustodyError` otherwise.
    Does not change ``SOFTHSM2_CONF`` in this process: call :func:`use_softhsm_conf` for that.
    """
    _check_text(label, "token label", _LABEL_MAX)
    _check_text(master_key_label, "master key label", 255)
    _check_pin(pin, "user PIN")
    _check_pin(so_pin, "security officer PIN")
    module = Path(module)
    if not module.is_file():
        raise CustodyUnavailable(f"SoftHSM2 library {module} not found (install the softhsm2 package)")

    token_dir = Path(token_dir).resolve()
    token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(token_dir, 0o700)  # mkdir's mode is masked by umask and ignored for an existing dir
    tokens = token_dir / _TOKENS_DIR
    tokens.mkdir(mode=0o700, exist_ok=True)
    os.chmod(tokens, 0o700)
    conf = token_dir / CONF_NAME
    with _exclusive(token_dir):
        _write_conf(conf, _conf_text(tokens))
        request = {
            "module": str(module),
            "label": label,
            "pin": pin,
            "so_pin": so_pin,
            "master_key_label": master_key_label,
        }
        _run_setup_child(conf, request)
    return conf


def _run_setup_child(conf: Path, request: dict[str, str]) -> dict[str, Any]:
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["SOFTHSM2_CONF"] = str(conf)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    code = "from kmip_server.custody.softhsm import _child_main; raise SystemExit(_child_main())"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(request).encode("utf-8"),
            capture_output=True,
            env=env,
            timeout=_SETUP_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise CustodyError(f"SoftHSM2 token set-up did not finish within {_SETUP_TIMEOUT_S} s") from None
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    try:
        reply = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        reply = None
    if not isinstance(reply, dict):
        # Our child never prints a PIN; its stderr is a traceback at worst.
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise CustodyError(f"SoftHSM2 token set-up failed (exit status {proc.returncode}): {tail[0]}")
    if not reply.get("ok"):
        error_class = CustodyUnavailable if reply.get("unavailable") else CustodyError
        raise error_class(str(reply.get("error", "SoftHSM2 token set-up failed")))
    return reply


# ---- Everything below runs in the child process started by _run_setup_child. ----


def _child_main() -> int:
    """Read a set-up request as JSON on stdin, answer as one JSON line on stdout."""
    try:
        request = json.loads(sys.stdin.buffer.read())
        reply: dict[str, Any] = {"ok": True, **_setup_token(**request)}
    except CustodyUnavailable as exc:
        reply = {"ok": False, "unavailable": True, "error": str(exc)}
    except CustodyError as exc:
        reply = {"ok": False, "error": str(exc)}
    print(json.dumps(reply), flush=True)
    return 0 if reply["ok"] else 1


def _c_init_token(module: str, slot_id: int, so_pin: str, label: str) -> None:
    # Same path as python-pkcs11 loaded, so dlopen returns the same, already initialised, library.
    library = ctypes.CDLL(module)
    init_token = library.C_InitToken
    init_token.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    init_token.restype = ctypes.c_ulong
    so_pin_bytes = so_pin.encode("utf-8")
    rv = init_token(slot_id, so_pin_bytes, len(so_pin_bytes), label.encode("utf-8").ljust(_LABEL_MAX, b" "))
    if rv != 0:
        raise CustodyError(f"C_InitToken failed for token {label!r} (CKR 0x{rv:08x})")


def _setup_token(*, module: str, label: str, pin: str, so_pin: str, master_key_label: str) -> dict[str, bool]:
    import pkcs11
    from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass, TokenFlag
    from pkcs11.exceptions import (
        MultipleObjectsReturned,
        NoSuchKey,
        NoSuchToken,
        PinIncorrect,
        PinLenRange,
        PinLocked,
        PKCS11Error,
    )

    try:
        lib = pkcs11.lib(module)
    except PKCS11Error as exc:
        raise CustodyUnavailable(f"cannot initialise SoftHSM2 ({module}): {exc}") from None

    def find_token() -> Any:
        try:
            return lib.get_token(token_label=label)
        except NoSuchToken:
            return None

    wrong_pin = (PinIncorrect, PinLenRange)
    try:
        token = find_token()
        token_created = token is None
        if token is None:
            free = [s for s in lib.get_slots() if not s.get_token().flags & TokenFlag.TOKEN_INITIALIZED]
            if not free:
                raise CustodyError("SoftHSM2 has no free slot for a new token")
            _c_init_token(module, free[0].slot_id, so_pin, label)
            token = find_token()
            if token is None:
                raise CustodyError(f"token {label!r} did not appear after C_InitToken")
        if not token.flags & TokenFlag.USER_PIN_INITIALIZED:
            # Also completes a token whose earlier set-up stopped between C_InitToken and C_InitPIN.
            try:
                with token.open(rw=True, so_pin=so_pin) as so_session:
                    so_session.init_pin(pin)
            except wrong_pin:
                raise CustodyUnavailable(f"wrong security officer PIN for token {label!r}") from None
        try:
            session = token.open(rw=True, user_pin=pin)
        except wrong_pin:
            raise CustodyUnavailable(f"wrong PIN for token {label!r}") from None
        except PinLocked:
            raise CustodyUnavailable(f"the user PIN of token {label!r} is locked") from None
        with session:
            try:
                existing = session.get_key(object_class=ObjectClass.SECRET_KEY, label=master_key_label)
            except NoSuchKey:
                existing = None
            except MultipleObjectsReturned:
                raise CustodyError(f"several keys on token {label!r} are labelled {master_key_label!r}") from None
            # The audit trail's HMAC key is made here too, so that the nodes made by copying
            # this data directory share it and append to one verifiable trail.
            ensure_audit_key(session)
            if existing is not None:
                if existing.key_type != KeyType.AES:
                    raise CustodyError(f"key {master_key_label!r} on token {label!r} exists but is not AES")
                return {"token_created": token_created, "key_created": False}
            session.generate_key(
                KeyType.AES,
                _MASTER_KEY_BITS,
                id=session.generate_random(128),
                label=master_key_label,
                store=True,
                capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT | MechanismFlag.WRAP | MechanismFlag.UNWRAP,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )
            return {"token_created": token_created, "key_created": True}
    except PKCS11Error as exc:
        raise CustodyError(f"SoftHSM2 refused to set up token {label!r}: {type(exc).__name__}") from None
