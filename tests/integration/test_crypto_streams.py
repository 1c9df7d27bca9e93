"""The state of streamed cryptographic operations: kept in the store, sealed under the master
key, bound to its identity and operation, and bounded (per identity, idle time, size). The
operations' own streaming (Encrypt in parts, Hash in parts ...) is tested with each family."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.spec.enums import BlockCipherMode, Operation, PaddingMethod, ResultReason
from kmip_server.crypto_settings import CryptoSettings
from kmip_server.custody.pkcs11 import Pkcs11Custody
from kmip_server.engine.context import RequestContext, WriteNeeded
from kmip_server.engine.identity import ClientIdentity
from kmip_server.operations.crypto import streams
from kmip_server.policy import Policy, Principal
from kmip_server.storage.repository import Repository
from kmip_server.storage.schema import crypto_streams

T0 = 1_900_000_000
SECRET = b"attack at dawn, the plaintext of a stream part" * 3


@dataclass
class Part:
    """The stream fields of a request payload."""

    correlation_value: bytes | None = None
    init_indicator: bool | None = None
    final_indicator: bool | None = None


@pytest.fixture
def repository(store_url: str) -> Iterator[Repository]:
    repo = Repository(store_url)
    repo.create_schema()
    yield repo
    repo.dispose()


@pytest.fixture(autouse=True)
def bounds() -> Iterator[None]:
    streams.configure(CryptoSettings(streams_per_identity=3, stream_idle_seconds=60, stream_max_bytes=4096))
    yield
    streams.configure(CryptoSettings())


VERSION = (2, 1)


def context(session, custody: Pkcs11Custody, name: str = "alice", now: int = T0) -> RequestContext:
    return RequestContext(ClientIdentity(name), VERSION, session, custody, Policy(administrators=frozenset({"admin"})), now, Principal(name))


def opened(repository: Repository, custody: Pkcs11Custody, name: str = "alice", now: int = T0) -> bytes:
    """A new Encrypt stream holding SECRET, saved; its Correlation Value."""
    with repository.write() as session:
        stream = streams.stream_of(context(session, custody, name, now), Operation.ENCRYPT, Part(init_indicator=True))
        assert stream is not None and stream.new
        stream.key_uid = "key-1"
        stream.parameters = CryptographicParameters(
            block_cipher_mode=BlockCipherMode.CBC, padding_method=PaddingMethod.PKCS5
        )
        stream.values["iv"] = bytes(range(16))
        stream.data = SECRET
        stream.emitted = 128
        stream.save(context(session, custody, name, now))
        return stream.correlation_value


def resumed(repository, custody, correlation, name="alice", now=T0 + 1, operation=Operation.ENCRYPT, final=False):
    with repository.write() as session:
        ctx = context(session, custody, name, now)
        stream = streams.stream_of(ctx, operation, Part(correlation_value=correlation, final_indicator=final))
        assert stream is not None
        if final:
            stream.close(ctx)
        return stream


def refused(reason: ResultReason, call, *args, **kwargs) -> str:
    with pytest.raises(KmipError) as caught:
        call(*args, **kwargs)
    assert caught.value.reason == reason, caught.value
    return str(caught.value)


def test_a_whole_operation_is_no_stream(repository: Repository, custody: Pkcs11Custody) -> None:
    with repository.read() as session:
        ctx = context(session, custody)
        assert streams.stream_of(ctx, Operation.HASH, Part()) is None
        # Init and Final in one part: the whole operation.
        assert streams.stream_of(ctx, Operation.HASH, Part(init_indicator=True, final_indicator=True)) is None
        assert streams.stream_of(ctx, Operation.HASH, Part(final_indicator=True)) is None
        # A stream writes its state, so a read transaction hands the message back as a write.
        with pytest.raises(WriteNeeded):
            streams.stream_of(ctx, Operation.HASH, Part(init_indicator=True))


def test_the_state_comes_back_at_the_next_part(repository: Repository, custody: Pkcs11Custody) -> None:
    correlation = opened(repository, custody)
    assert len(correlation) == 16
    stream = resumed(repository, custody, correlation)
    assert not stream.new and not stream.final
    assert stream.key_uid == "key-1"
    assert stream.parameters == CryptographicParameters(
        block_cipher_mode=BlockCipherMode.CBC, padding_method=PaddingMethod.PKCS5
    )
    assert stream.values == {"iv": bytes(range(16))}
    assert (stream.data, stream.emitted) == (SECRET, 128)
    # The final part closes it: the Correlation Value is unknown afterwards.
    resumed(repository, custody, correlation, final=True)
    message = refused(ResultReason.INVALID_CORRELATION_VALUE, resumed, repository, custody, correlation)
    assert correlation.hex() not in message  # only a prefix is shown


def test_the_store_holds_the_state_sealed(repository: Repository, custody: Pkcs11Custody) -> None:
    correlation = opened(repository, custody)
    with repository.engine.connect() as conn:
        rows = conn.execute(select(crypto_streams)).all()
    assert len(rows) == 1
    (row,) = rows
    assert (row.id, row.owner, row.operation, row.expires) == (correlation.hex(), "alice", Operation.ENCRYPT, T0 + 60)
    for secret in (SECRET, SECRET[:16], bytes(range(16)), b"key-1"):
        assert secret not in row.sealed
    # A sealed state moved onto another stream's row does not open there.
    other = opened(repository, custody)
    with repository.engine.begin() as conn:
        conn.execute(crypto_streams.update().where(crypto_streams.c.id == other.hex()).values(sealed=row.sealed))
    refused(ResultReason.INVALID_CORRELATION_VALUE, resumed, repository, custody, other)


def test_a_stream_is_its_identitys_and_its_operations(repository: Repository, custody: Pkcs11Custody) -> None:
    correlation = opened(repository, custody)
    # Another identity gets the answer an unknown value gets: it cannot tell the stream exists.
    unknown = refused(ResultReason.INVALID_CORRELATION_VALUE, resumed, repository, custody, bytes(16), name="bob")
    theirs = refused(ResultReason.INVALID_CORRELATION_VALUE, resumed, repository, custody, correlation, name="bob")
    assert unknown.replace(bytes(16).hex()[:8], "") == theirs.replace(correlation.hex()[:8], "")
    message = refused(
        ResultReason.INVALID_CORRELATION_VALUE, resumed, repository, custody, correlation, operation=Operation.DECRYPT
    )
    assert "ENCRYPT" in message
    assert resumed(repository, custody, correlation).data == SECRET  # still there for alice


def test_an_idle_stream_expires(repository: Repository, custody: Pkcs11Custody) -> None:
    correlation = opened(repository, custody)
    resumed(repository, custody, correlation, now=T0 + 59)
    refused(ResultReason.INVALID_CORRELATION_VALUE, resumed, repository, custody, correlation, now=T0 + 60)
    # Expired rows go when the next stream opens.
    opened(repository, custody, now=T0 + 61)
    with repository.engine.connect() as conn:
        assert conn.execute(select(crypto_streams.c.id).where(crypto_streams.c.id == correlation.hex())).first() is None


def test_each_identity_has_a_bounded_number_of_streams(repository: Repository, custody: Pkcs11Custody) -> None:
    for _ in range(3):
        opened(repository, custody)
    message = refused(ResultReason.ILLEGAL_OPERATION, opened, repository, custody)
    assert "3 streams open" in message
    opened(repository, custody, name="bob")  # others are not affected
    opened(repository, custody, now=T0 + 61)  # once alice's have expired, she may open again


def test_a_stream_gathers_a_bounded_amount_of_input(repository: Repository, custody: Pkcs11Custody) -> None:
    correlation = opened(repository, custody)
    with repository.write() as session:
        ctx = context(session, custody, now=T0 + 1)
        stream = streams.stream_of(ctx, Operation.ENCRYPT, Part(correlation_value=correlation))
        assert stream is not None
        stream.data = bytes(4097)
        message = refused(ResultReason.ILLEGAL_OPERATION, stream.save, ctx)
    assert "4096 bytes" in message


def test_init_with_a_correlation_value_is_refused(repository: Repository, custody: Pkcs11Custody) -> None:
    correlation = opened(repository, custody)
    with repository.write() as session:
        ctx = context(session, custody)
        part = Part(correlation_value=correlation, init_indicator=True)
        refused(ResultReason.INVALID_FIELD, streams.stream_of, ctx, Operation.ENCRYPT, part)


def test_1x_has_no_invalid_correlation_value(repository: Repository, custody: Pkcs11Custody, monkeypatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "VERSION", (1, 4))
    correlation = opened(repository, custody)
    refused(ResultReason.INVALID_FIELD, resumed, repository, custody, bytes(16))
    refused(ResultReason.INVALID_FIELD, resumed, repository, custody, correlation, operation=Operation.DECRYPT)
