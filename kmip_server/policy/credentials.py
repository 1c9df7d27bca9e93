"""The KMIP Credential store: usernames and salted scrypt hashes of their passwords, in
``credentials.json`` in the data directory (mode 0600).

vCenter and NetApp send a Username and Password credential in every request header, as a
second factor besides the client certificate. scrypt costs tens of milliseconds by design, so
a successful check is remembered (by username and a SHA-256 of the password, in this process's
memory only) for :data:`REMEMBER_SECONDS`; a changed or removed password takes effect when the
server reloads the file (SIGHUP or restart) or the memory expires.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from pathlib import Path

CREDENTIALS_FILE = "credentials.json"
REMEMBER_SECONDS = 300.0
_N, _R, _P = 2**14, 8, 1
_DUMMY_SALT = bytes(16)


class CredentialError(ValueError):
    """A credentials file that cannot be used."""


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=64 * 1024 * 1024, dklen=32)


class CredentialStore:
    def __init__(self, path: Path, entries: dict[str, tuple[bytes, bytes]] | None = None) -> None:
        self.path = path
        self._entries = dict(entries or {})
        self._remembered: dict[tuple[str, bytes], float] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> CredentialStore:
        """The store in ``path`` (empty if the file does not exist)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise CredentialError(f"cannot read {path}: {exc}") from None
        entries = {}
        try:
            for user, entry in data["users"].items():
                entries[str(user)] = (bytes.fromhex(entry["salt"]), bytes.fromhex(entry["hash"]))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CredentialError(f"{path} is not a Strongroom credentials file") from None
        return cls(path, entries)

    def usernames(self) -> list[str]:
        return sorted(self._entries)

    def set(self, username: str, password: str) -> None:
        if not username or not password:
            raise CredentialError("username and password must not be empty")
        salt = os.urandom(16)
        self._entries[username] = (salt, _hash(password, salt))
        self._remembered.clear()

    def remove(self, username: str) -> bool:
        self._remembered.clear()
        return self._entries.pop(username, None) is not None

    def check(self, username: str, password: str) -> bool:
        """Whether ``password`` is ``username``'s. An unknown user costs the same scrypt as a
        known one, so timing does not tell which usernames exist."""
        memo = (username, hashlib.sha256(password.encode()).digest())
        now = time.monotonic()
        with self._lock:
            until = self._remembered.get(memo)
            if until is not None and until > now:
                return True
        salt, expected = self._entries.get(username, (_DUMMY_SALT, b""))
        good = hmac.compare_digest(_hash(password, salt), expected) and bool(expected)
        if good:
            with self._lock:
                if len(self._remembered) > 10_000:
                    self._remembered.clear()
                self._remembered[memo] = now + REMEMBER_SECONDS
        return good

    def save(self) -> None:
        """Write the file atomically, readable by its owner only."""
        data = {
            "users": {
                u: {"salt": s.hex(), "hash": h.hex(), "kdf": "scrypt-n16384-r8-p1"}
                for u, (s, h) in sorted(self._entries.items())
            }
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
        os.replace(tmp, self.path)
