"""Fixtures for integration tests: real components, no mocks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from kmip_server.custody import Pkcs11Custody, find_softhsm_module, initialise_token, use_softhsm_conf
from kmip_server.storage.repository import Repository

from .engine_support import Clock

if TYPE_CHECKING:
    from kmip_server.engine.dispatcher import Dispatcher

# ---- SoftHSM2 key custody (owner: custody) ----


@dataclass(frozen=True)
class SoftHsmToken:
    """The test session's SoftHSM2 token; its conf is already active in this process."""

    module: Path
    token_dir: Path
    conf: Path
    label: str
    pin: str
    so_pin: str
    master_key_label: str

    def open(self) -> Pkcs11Custody:
        return Pkcs11Custody.open(self.module, self.label, self.pin, self.master_key_label)


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmToken]:
    """One token for the whole run: libsofthsm2 reads SOFTHSM2_CONF once per process, so every
    test in this process must share one configuration (use a subprocess for another token)."""
    module = find_softhsm_module()
    if module is None:
        pytest.fail("SoftHSM2 is not installed: run scripts/setup (apt-get install softhsm2)")
    token_dir = tmp_path_factory.mktemp("softhsm") / "token"
    names = {"label": "strongroom-test", "master_key_label": "strongroom-master"}
    pins = {"pin": "test-user-pin-1234", "so_pin": "test-so-pin-5678"}
    conf = initialise_token(token_dir, module=module, **names, **pins)
    previous = os.environ.get("SOFTHSM2_CONF")
    use_softhsm_conf(conf)
    yield SoftHsmToken(module=module, token_dir=token_dir, conf=conf, **names, **pins)
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture
def custody(softhsm_token: SoftHsmToken) -> Iterator[Pkcs11Custody]:
    """A custody on the session token, closed after the test."""
    with softhsm_token.open() as opened:
        yield opened


# ---- stores: a temporary SQLite file and a PostgreSQL schema of its own

POSTGRES_URL = os.environ.get("STRONGROOM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL whose connections all work in a new schema, dropped afterwards: tests and
    concurrent runs never see each other's tables. An unreachable server fails the test:
    the store must work on PostgreSQL, and ``scripts/test`` starts the local one."""
    schema = f"strongroom_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(POSTGRES_URL, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc.orig}")
    # libpq's "options" puts every connection (child processes too) in the schema.
    scoped = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store the server supports, empty."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with postgres_schema_url() as url:
        yield url


# ---- the in-process engine (owner: engine tests)


@pytest.fixture
def clock() -> Clock:
    """A settable clock for the engine: date rules are tested at exact times."""
    return Clock()


@pytest.fixture
def engine(custody: Pkcs11Custody, store_url: str, clock: Clock) -> Iterator[Dispatcher]:
    """A dispatcher on the session's SoftHSM2 token and a fresh store (each test runs on SQLite
    and on PostgreSQL); `admin` administers."""
    from kmip_server import operations  # noqa: F401  (registers the handlers)
    from kmip_server.engine.dispatcher import Dispatcher
    from kmip_server.policy import DEFAULT_POLICY

    repository = Repository(store_url)
    repository.create_schema()
    yield Dispatcher(repository, custody, DEFAULT_POLICY.with_administrators(["admin"]), clock=clock)
    repository.dispose()
