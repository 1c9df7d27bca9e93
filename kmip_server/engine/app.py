"""Assembling the request handler of one worker process from the configuration."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable

from ..admin.metrics import metrics_enabled
from ..approvals import ApprovalService
from ..approvals.desk import ApprovalDesk
from ..config import ServerConfig
from ..custody import KeyCustody
from ..custody.opening import open_custody
from ..policy import Policy, PolicyError, server_policy
from ..policy.credentials import CREDENTIALS_FILE, CredentialError, CredentialStore
from ..storage.repository import Repository
from .dispatcher import Dispatcher
from .identity import ClientIdentity

MessageHandler = Callable[[bytes, ClientIdentity], bytes]
log = logging.getLogger("strongroom.engine")


def policy_from_config(config: ServerConfig) -> Policy:
    return server_policy(config)


def _credentials(config: ServerConfig) -> CredentialStore | None:
    path = config.data_dir / CREDENTIALS_FILE
    return CredentialStore.load(path) if path.exists() else None


def reload_on_sighup(dispatcher: Dispatcher, config: ServerConfig) -> None:
    """Reload the access policy on SIGHUP (the parent passes it on to each worker): a file
    that does not validate keeps the policy in force and says why."""

    def reload(signum: int, frame: object) -> None:
        try:
            policy = policy_from_config(config)
        except PolicyError as exc:
            log.error("the access policy was not reloaded; the one in force stays: %s", exc)
            return
        dispatcher.reload_policy(policy)
        try:
            dispatcher.credentials = _credentials(config)
        except CredentialError as exc:
            log.error("the credentials were not reloaded; the ones in force stay: %s", exc)
        log.info("access policy reloaded")

    signal.signal(signal.SIGHUP, reload)


def build_dispatcher(config: ServerConfig) -> Dispatcher:
    """Open the token and the store for this process (call it after fork) and wire the engine."""
    from .. import operations  # registers the handlers

    operations.crypto.configure(config.crypto)
    operations.key_pairs.configure(config.crypto)
    operations.certificates.configure(config.crypto)
    policy = policy_from_config(config)
    custody: KeyCustody = open_custody(config)
    try:
        repository = Repository(config.storage.url, background_checkpoints=True)
        # Idempotent and safe from all workers at once: a store named in the configuration
        # after `init` (a new PostgreSQL database, say) gets its tables at first start.
        repository.create_schema()
    except Exception:
        custody.close()
        raise
    approvals = ApprovalService(custody)
    metrics = None
    if metrics_enabled():  # the admin listener is on: kmip_server/admin/metrics.py
        from ..admin.metrics import EngineMetrics, TokenMetrics
        from ..custody.metered import MeteredCustody

        metrics = EngineMetrics()
        custody = MeteredCustody(custody, TokenMetrics().observe)
    dispatcher = Dispatcher(
        repository,
        custody,
        policy,
        test_harness=config.test_harness,
        max_batch_items=config.listener.max_batch_items,
        credentials=_credentials(config),
        approvals=approvals,
        sync_read_records=config.storage.sync_read_records,
        metrics=metrics,
    )
    dispatcher.approval_desk = ApprovalDesk(repository, approvals, policy, dispatcher.audit, dispatcher.clock)
    return dispatcher


def build_handler(config: ServerConfig) -> MessageHandler:
    """The transport's per-worker handler: ``handler(request_bytes, identity) -> response_bytes``.
    With ``[rotation] enabled`` the worker's rotation scheduler runs beside it (kmip_server/rotation/)."""
    dispatcher = build_dispatcher(config)
    if config.rotation.enabled:
        from ..rotation.scheduler import start_beside  # it imports the operations, loaded above

        start_beside(dispatcher, config)
    reload_on_sighup(dispatcher, config)
    return dispatcher.handle
