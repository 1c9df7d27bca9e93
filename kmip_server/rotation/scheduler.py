"""The rotation scheduler: a thread in each worker process that re-keys the keys due.

Every ``[rotation] check_seconds`` it takes (or renews) the store's rotation lease
(kmip_server/storage/rotation.py); the one process holding it, among all workers of all
servers on the store, finds up to ``batch_size`` due keys, longest due first, and replaces
each in a transaction of its own: the key's row locked, the rule of
:func:`~.lineage.due_since` checked again on what is committed now, then
:func:`~kmip_server.operations.rekey.rekey_symmetric` (or :func:`~.rekey.rekey_pair` for a
Private Key) with the key's Rotate Offset. A second scheduler reaching the same key (its lease
had expired during a long pause, say) waits for the row, then finds it replaced, and leaves it:
each due key is rotated exactly once. A key that cannot be rotated (its algorithm cannot be
generated, the token failed) is logged and left for an hour, so it does not fill every batch.

Why in the workers, not the serving parent: the parent stays single-threaded and without a
token session or database connection, which is what makes forking the workers safe
(transport/workers.py); a worker already has both. The thread has a store connection pool of
its own (on SQLite a writer lock of its own, which the worker's event loop then waits on like
another process's, for the few milliseconds of one rotation), and shares the worker's token
session, which serialises its calls. Its notion of now is the engine's clock, so tests set it.
The worker's close (SIGTERM) stops it: the rotation in progress finishes, the lease is given up.

Each rotation is a record of the audit trail, in the rotation's transaction (identity = the
key's owner, whom the scheduler acts for; the old and new Unique Identifiers; detail "automatic
rotation"); a failed one gets its record in a transaction of its own. It is logged on
``strongroom.rotation`` too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import ObjectType

from ..audit import AuditEvent, AuditTrail, AuditWriteError
from ..config import ServerConfig
from ..custody import CustodyError, KeyCustody
from ..engine.context import RequestContext
from ..engine.dispatcher import Dispatcher
from ..engine.identity import ClientIdentity
from ..engine.items import reason_title
from ..logsafe import RepeatLimiter
from ..operations.common import load_object
from ..operations.rekey import rekey_pair, rekey_symmetric
from ..policy import DEFAULT_POLICY
from ..policy.facts import Principal
from ..rotation_settings import RotationSettings
from ..storage import rotation as store
from ..storage.repository import Repository
from .lineage import due_since

log = logging.getLogger("strongroom.rotation")

#: The lease lasts this many checks: a holder that stopped without giving it up (killed) is
#: replaced by another process within that time.
LEASE_CHECKS = 3
#: A key whose rotation failed is tried again after this long (seconds of the engine's clock).
RETRY_SECONDS = 3600
_V21 = (2, 1)
_SYMMETRIC = int(ObjectType.SYMMETRIC_KEY)


@dataclasses.dataclass(frozen=True, slots=True)
class Rotated:
    """One rotation done: the old key (a pair's Private Key) and its replacement(s)."""

    old_uid: str
    new_uids: tuple[str, ...]  # the new key; for a pair (Private Key, Public Key)
    due_since: int
    rotated: int


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def default_holder() -> str:
    """A name for this scheduler in the lease: the host, the process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class RotationScheduler:
    """Rotates the due keys of the store at ``repository`` (give it a Repository of its own)
    with ``custody``, as ``settings`` say; ``clock`` is the engine's."""

    def __init__(
        self,
        repository: Repository,
        custody: KeyCustody,
        settings: RotationSettings,
        *,
        clock: Callable[[], float] = time.time,
        holder: str | None = None,
    ) -> None:
        self.repository = repository
        self.custody = custody
        self.settings = settings
        self.clock = clock
        self.holder = holder or default_holder()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed: dict[str, int] = {}  # uid -> when it may be tried again
        self._failures = RepeatLimiter(log, 300.0)
        self.audit = AuditTrail(custody, socket.gethostname())

    # ------------------------------------------------------------------ the thread

    def start(self) -> None:
        """Check now, then every ``check_seconds``, on a daemon thread, until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="strongroom-rotation", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop checking (a rotation in progress finishes first) and give the lease up."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            with self.repository.write() as session:
                store.release_lease(session.connection, self.holder)
        except Exception as exc:  # noqa: BLE001 - the lease then expires by itself
            log.warning("could not give up the rotation lease: %s: %s", type(exc).__name__, exc)
        self._failures.flush()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.check()
            except Exception as exc:  # noqa: BLE001 - the store may be back at the next check
                self._failures.error("rotation check failed: %s: %s", type(exc).__name__, exc, exc_info=True)
            if self._stopping.wait(self.settings.check_seconds):
                break

    # ------------------------------------------------------------------ one check

    def check(self) -> list[Rotated]:
        """Take or renew the lease; holding it, rotate up to ``batch_size`` due keys."""
        now = int(self.clock())
        with self.repository.read() as session:
            holder, expires = store.lease(session.connection) or ("", 0)
        if holder not in ("", self.holder) and expires > now:
            return []  # another process's, as a read says: no write transaction (SQLite: no commit) for it
        with self.repository.write() as session:
            held = store.take_lease(session.connection, self.holder, now, LEASE_CHECKS * self.settings.check_seconds)
        if not held:
            return []
        self._failed = {uid: until for uid, until in self._failed.items() if until > now}
        with self.repository.read() as session:
            found = store.due_keys(session.connection, now, self.settings.batch_size + len(self._failed))
        due = [key for key in found if key.uid not in self._failed][: self.settings.batch_size]
        done: list[Rotated] = []
        for key in due:
            if self._stopping.is_set():
                break
            rotated = self.rotate(key)
            if rotated is not None:
                done.append(rotated)
        return done

    def rotate(self, key: store.DueKey) -> Rotated | None:
        """Replace ``key`` if it is still due, in a transaction of its own; None if it is not
        (another scheduler replaced it, it changed, it is gone) or its rotation failed."""
        operation = "Re-key" if key.object_type == _SYMMETRIC else "Re-key Key Pair"
        try:
            with self.repository.write() as session:
                now = int(self.clock())
                ctx = RequestContext(
                    identity=ClientIdentity(key.owner),
                    version=_V21,
                    session=session,
                    custody=self.custody,
                    # Acting for the owner: the replacement is the owner's, in the old key's tenant.
                    policy=DEFAULT_POLICY.with_administrators([key.owner]),
                    now=now,
                    principal=Principal(key.owner, key.tenant),
                    operation=operation,
                )
                try:
                    old = load_object(ctx, key.uid, for_update=True)  # the row lock decides
                except KmipError:
                    return None  # deleted since it was found
                record = old.record
                since = due_since(record.object_type, old.state, record.wrapped_value is not None, old.attributes, now)
                if since is None:
                    return None
                offset = old.attributes.first("Rotate Offset")
                offset = int(offset) if offset is not None else None
                if record.object_type == _SYMMETRIC:
                    new_uids: tuple[str, ...] = (rekey_symmetric(ctx, key.uid, offset, []),)
                else:
                    new_uids = rekey_pair(ctx, key.uid, offset, [], [])
                self.audit.append(
                    session.connection, [self._event(key, operation, now, (key.uid, *new_uids), None, ctx)]
                )
        except (KmipError, CustodyError, AuditWriteError) as exc:
            reason = _reason_name(exc)
            self._failed[key.uid] = int(self.clock()) + RETRY_SECONDS
            self._record_failure(key, operation, reason)
            log.warning(
                "could not rotate %s (due since %s): %s; trying again in %d s",
                key.uid,
                _when(key.due_since),
                exc,
                RETRY_SECONDS,
            )
            return None
        log.info("rotated %s (due since %s) -> %s", key.uid, _when(since), ", ".join(new_uids))
        return Rotated(key.uid, new_uids, since, now)


    def _event(
        self, key: store.DueKey, operation: str, now: float, object_ids: tuple[str, ...], reason: str | None,
        ctx: RequestContext | None,
    ) -> AuditEvent:
        changed = tuple(dict.fromkeys(ctx.session.changes)) if ctx is not None else ()
        return AuditEvent(
            time=now,
            node=self.audit.node,
            identity=key.owner,
            address=None,
            fingerprint=None,
            operation=operation,
            object_ids=object_ids,
            attributes=changed,
            result="Success" if reason is None else "Operation Failed",
            reason=reason,
            detail="automatic rotation",
        )

    def _record_failure(self, key: store.DueKey, operation: str, reason: str) -> None:
        try:
            with self.repository.write() as session:
                self.audit.append(session.connection, [self._event(key, operation, self.clock(), (key.uid,), reason, None)])
        except (AuditWriteError, SQLAlchemyError) as exc:
            log.error("could not record the failed rotation of %s in the audit trail: %s", key.uid, exc)


def _reason_name(exc: Exception) -> str:
    if isinstance(exc, KmipError):
        return reason_title(exc.reason)
    return "General Failure"


def start_beside(dispatcher: Dispatcher, config: ServerConfig) -> RotationScheduler:
    """Start a worker's scheduler beside its ``dispatcher`` (engine/app.py), on the token and
    clock of the dispatcher and a store connection of its own; the dispatcher's close stops it."""
    repository = Repository(config.storage.url, pool_size=1)
    scheduler = RotationScheduler(repository, dispatcher.custody, config.rotation, clock=dispatcher.clock)

    def stop() -> None:
        try:
            scheduler.stop()
        finally:
            repository.dispose()

    dispatcher.on_close.append(stop)
    scheduler.start()
    return scheduler
