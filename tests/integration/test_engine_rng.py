"""RNG Retrieve and RNG Seed through the engine on the real SoftHSM2 token, and the custody's
``seed_random``: what SoftHSM2 does with a seed, what a token that takes none makes of it."""

from __future__ import annotations

import pytest

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.payloads.crypto import RNGSeedRequest
from kmip_client.protocol.spec.enums import Operation, ResultReason
from kmip_server.crypto_settings import CryptoSettings
from kmip_server.custody.base import CustodyError, SeedingNotSupported
from kmip_server.engine.context import RequestContext
from kmip_server.engine.identity import ClientIdentity
from kmip_server.operations.crypto import rng
from kmip_server.operations.crypto.rng import MAX_RANDOM_BYTES, rng_seed
from kmip_server.policy import Policy, Principal
from kmip_server.storage.repository import Repository

from .engine_support import DelegatingCustody, failure, one
from .kmip_messages import V14, V21, item, ok

SEED = bytes.fromhex("333c06587706225099a67438f263f8f932f64b860c3a7dbb21bc2bd56685d8bc")  # CS-RNG-O-1's


@pytest.mark.parametrize("version", [(1, 3), V14, (2, 0), V21])
@pytest.mark.parametrize("length", [1, 32, 1000, MAX_RANDOM_BYTES])
def test_rng_retrieve_returns_fresh_bytes_of_the_length_asked(engine, version, length):
    first = ok(one(engine, version, item(Operation.RNG_RETRIEVE, data_length=length))).data
    second = ok(one(engine, version, item(Operation.RNG_RETRIEVE, data_length=length))).data
    assert len(first) == len(second) == length
    if length >= 32:
        assert first != second  # equal by chance with probability 2**-256 at most
        assert len(set(first)) > 1


def test_rng_retrieve_of_nothing(engine):
    assert ok(one(engine, V21, item(Operation.RNG_RETRIEVE, data_length=0))).data == b""


@pytest.mark.parametrize("version", [V14, V21])
def test_rng_retrieve_refusals(engine, version):
    """Beyond the bound: Response Too Large (KMIP 2.1 Table 318), before anything is made.
    Negative or no Data Length: Invalid Field."""
    too_many = item(Operation.RNG_RETRIEVE, data_length=MAX_RANDOM_BYTES + 1)
    assert str(MAX_RANDOM_BYTES) in failure(one(engine, version, too_many), ResultReason.RESPONSE_TOO_LARGE)
    huge = item(Operation.RNG_RETRIEVE, data_length=2**31 - 1)
    failure(one(engine, version, huge), ResultReason.RESPONSE_TOO_LARGE)
    failure(one(engine, version, item(Operation.RNG_RETRIEVE, data_length=-1)), ResultReason.INVALID_FIELD)
    failure(one(engine, version, item(Operation.RNG_RETRIEVE)), ResultReason.INVALID_FIELD)


def test_rng_operations_are_not_offered_before_1_2(engine):
    """KMIP 1.2 introduced them."""
    result = one(engine, (1, 1), item(Operation.RNG_RETRIEVE, data_length=8))
    failure(result, ResultReason.OPERATION_NOT_SUPPORTED)


@pytest.mark.parametrize("version", [(1, 3), V14, (2, 0), V21])
def test_softhsm_takes_the_whole_seed(engine, version):
    """CS-RNG-O-1: SoftHSM2's C_SeedRandom accepts any seed, so all of it is used."""
    assert ok(one(engine, version, item(Operation.RNG_SEED, data=SEED))).data_length == len(SEED)
    big = bytes(range(256)) * 64
    assert ok(one(engine, version, item(Operation.RNG_SEED, data=big))).data_length == len(big)
    # The generator keeps working after a seed.
    assert len(ok(one(engine, version, item(Operation.RNG_RETRIEVE, data_length=32))).data) == 32


def test_an_empty_seed_uses_nothing(engine):
    assert ok(one(engine, V21, item(Operation.RNG_SEED, data=b""))).data_length == 0
    failure(one(engine, V21, item(Operation.RNG_SEED)), ResultReason.INVALID_FIELD)


def test_custody_seed_random_on_softhsm(custody):
    """The custody call itself: accepted (returns nothing), bytes only, and refused once closed."""
    custody.seed_random(SEED)
    custody.seed_random(bytearray(SEED))
    with pytest.raises(TypeError):
        custody.seed_random("not bytes")  # type: ignore[arg-type]


def test_custody_seed_random_after_close(softhsm_token):
    opened = softhsm_token.open()
    opened.close()
    with pytest.raises(CustodyError):
        opened.seed_random(SEED)


class _UnseedableToken(DelegatingCustody):
    """The interface's own default: a custody that does not override ``seed_random`` takes no
    seed. Only ``seed_random`` is reached by RNG Seed; the token's other calls are delegated."""


def test_a_token_that_takes_no_seed_refuses_it(custody, tmp_path):
    """A token whose generator takes no seed: RNG Seed is refused, Permission Denied, as the
    OASIS file of a refusing server (CS-RNG-O-4) shows."""
    unseedable = _UnseedableToken(custody)
    with pytest.raises(SeedingNotSupported):
        unseedable.seed_random(SEED)
    repository = Repository(f"sqlite:///{tmp_path / 'store.db'}")
    repository.create_schema()
    try:
        with repository.write() as session:
            ctx = RequestContext(ClientIdentity("alice"), V21, session, unseedable, Policy(administrators=frozenset()), 0, Principal("alice"))
            with pytest.raises(KmipError) as refused:
                rng_seed(ctx, RNGSeedRequest(data=SEED))
            assert refused.value.reason == ResultReason.PERMISSION_DENIED
            assert "takes no seed" in str(refused.value)
    finally:
        repository.dispose()


@pytest.fixture
def seeding():
    """Set the RNG Seed settings for one test, and restore the defaults after it."""
    yield lambda **settings: rng.configure(CryptoSettings(**settings))
    rng.configure(CryptoSettings())


@pytest.mark.parametrize("version", [(1, 3), V21])
def test_the_seed_settings_are_the_four_cs_rng_o_servers(engine, seeding, version):
    """O-1 takes all 32 bytes (the default), O-2 takes 16, O-3 ignores the seed (Data Length 0),
    O-4 refuses it (Permission Denied)."""
    seed = item(Operation.RNG_SEED, data=SEED)
    assert ok(one(engine, version, seed)).data_length == 32
    seeding(rng_seed_max_bytes=16)
    assert ok(one(engine, version, seed)).data_length == 16
    assert ok(one(engine, version, item(Operation.RNG_SEED, data=SEED[:8]))).data_length == 8
    seeding(rng_seed="ignore")
    assert ok(one(engine, version, seed)).data_length == 0
    seeding(rng_seed="refuse")
    assert "takes no seed" in failure(one(engine, version, seed), ResultReason.PERMISSION_DENIED)
    # RNG Retrieve is not affected.
    assert len(ok(one(engine, version, item(Operation.RNG_RETRIEVE, data_length=16))).data) == 16
