"""Assembling the request handler of one worker process from the configuration."""

from __future__ import annotations

from collections.abc import Callable

from ..config import ServerConfig, read_pin
from ..custody.pkcs11 import Pkcs11Custody
from ..custody.softhsm import use_softhsm_conf
from ..policy import DEFAULT_POLICY, Policy, load_policy
from ..storage.repository import Repository
from .dispatcher import Dispatcher
from .identity import ClientIdentity

MessageHandler = Callable[[bytes, ClientIdentity], bytes]


def policy_from_config(config: ServerConfig) -> Policy:
    base = load_policy(config.policy.policy_file) if config.policy.policy_file else DEFAULT_POLICY
    return base.with_administrators(config.policy.admin_identities)


def build_dispatcher(config: ServerConfig) -> Dispatcher:
    """Open the token and the store for this process (call it after fork) and wire the engine."""
    from .. import operations  # noqa: F401  (registers the handlers)

    policy = policy_from_config(config)
    if config.custody.softhsm2_conf is not None:
        # SoftHSM2 reads its configuration once per process, when the library starts.
        use_softhsm_conf(config.custody.softhsm2_conf)
    custody = Pkcs11Custody.open(
        config.custody.module,
        config.custody.token_label,
        read_pin(config.custody),
        config.custody.master_key_label,
    )
    try:
        repository = Repository(config.storage.url, background_checkpoints=True)
        # Idempotent and safe from all workers at once: a store named in the configuration
        # after `init` (a new PostgreSQL database, say) gets its tables at first start.
        repository.create_schema()
    except Exception:
        custody.close()
        raise
    return Dispatcher(repository, custody, policy, test_harness=config.test_harness)


def build_handler(config: ServerConfig) -> MessageHandler:
    """The transport's per-worker handler: ``handler(request_bytes, identity) -> response_bytes``."""
    return build_dispatcher(config).handle
