"""Opening the data directory's token the way every process of a server does: one at a time.

The server's workers, and the operator commands that need the token (``audit verify``,
``approvals approve``, ``backup``), share this, so that they take turns on the same lock file.
Kept apart from the request engine: those commands must not load every operation to log in.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from ..config import ServerConfig, read_pin
from .pkcs11 import Pkcs11Custody
from .softhsm import use_softhsm_conf

#: The lock file, in the data directory, that the processes of a server take turns on to open the token.
TOKEN_LOCK = ".token-open.lock"


@contextlib.contextmanager
def token_opening_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``data_dir/TOKEN_LOCK`` for the block.

    The worker processes open the token at the same moment, and opening it writes to it:
    logging in makes SoftHSM2 (its file object store) rewrite the token's ``token.object`` and
    ``generation`` files. A process reading them meanwhile finds the token missing or its slot
    list failing ("cannot list the tokens ...: GeneralError"), and a worker failing to start
    stops the server: seen in a few of the day's many 2-worker starts. Opening one process at a
    time costs milliseconds at start; once open, the sessions are used concurrently as before.
    """
    fd = os.open(data_dir / TOKEN_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def open_custody(config: ServerConfig) -> Pkcs11Custody:
    """Log in to the configured token, under the lock, and find (or, on a token that has none
    yet, make) the audit key there too, so that no two processes make one each."""
    if config.custody.softhsm2_conf is not None:
        # SoftHSM2 reads its configuration once per process, when the library starts.
        use_softhsm_conf(config.custody.softhsm2_conf)
    with token_opening_lock(config.data_dir):
        custody = Pkcs11Custody.open(
            config.custody.module,
            config.custody.token_label,
            read_pin(config.custody),
            config.custody.master_key_label,
        )
        try:
            custody.prepare_audit_key()
        except BaseException:
            custody.close()
            raise
        return custody


__all__ = ["TOKEN_LOCK", "open_custody", "token_opening_lock"]
