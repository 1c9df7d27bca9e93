"""The key a cryptographic operation uses: read with only the attributes the rules need, and
unwrapped for the one operation unless the opt-in cache of unwrapped keys is configured."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kmip_client.protocol.model import Attribute
from kmip_client.protocol.model.attributes import CryptographicParameters, Link, RevocationReason
from kmip_client.protocol.spec.enums import BlockCipherMode, LinkType, Operation, ResultReason, RevocationReasonCode
from kmip_server.crypto_settings import CryptoSettings
from kmip_server.custody.pkcs11 import Pkcs11Custody
from kmip_server.engine.context import RequestContext
from kmip_server.engine.dispatcher import Dispatcher
from kmip_server.engine.identity import ClientIdentity
from kmip_server.operations.crypto import keys
from kmip_server.policy import Policy, Principal
from kmip_server.storage.repository import Repository

from .engine_support import T0, Clock, DelegatingCustody, one
from .kmip_messages import V21, item, ok
from .test_engine_encryption import key

KEY = bytes(range(32))
ECB = CryptographicParameters(block_cipher_mode=BlockCipherMode.ECB)


class CountingCustody(DelegatingCustody):
    """The real token, with its unwraps counted."""

    unwraps = 0

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        self.unwraps += 1
        return self.real.unwrap(blob, context)


@pytest.fixture
def counting(custody: Pkcs11Custody) -> CountingCustody:
    return CountingCustody(custody)


@pytest.fixture
def engine(counting: CountingCustody, store_url: str) -> Iterator[Dispatcher]:
    from kmip_server import operations  # noqa: F401

    repository = Repository(store_url)
    repository.create_schema()
    clock = Clock()
    yield Dispatcher(repository, counting, Policy(administrators=frozenset({"admin"})), clock=clock)
    repository.dispose()
    keys.configure(CryptoSettings())


def encrypt(engine: Dispatcher, uid: str) -> bytes:
    return ok(
        one(engine, V21, item(Operation.ENCRYPT, unique_identifier=uid, cryptographic_parameters=ECB, data=bytes(16)))
    ).data


def test_without_the_cache_every_operation_unwraps(engine, counting):
    uid = key(engine, V21, KEY)
    counting.unwraps = 0
    first = encrypt(engine, uid)
    assert encrypt(engine, uid) == first
    assert counting.unwraps == 2


def test_the_cache_saves_the_unwrap_within_its_bounds(engine, counting):
    keys.configure(CryptoSettings(key_cache_size=1, key_cache_seconds=0.2))
    uid, other = key(engine, V21, KEY), key(engine, V21, bytes(32))
    counting.unwraps = 0
    first = encrypt(engine, uid)
    assert encrypt(engine, uid) == first and counting.unwraps == 1
    # One key fits: the other evicts it.
    encrypt(engine, other)
    encrypt(engine, uid)
    assert counting.unwraps == 3
    # Past its time it is unwrapped again.
    time.sleep(0.25)
    encrypt(engine, uid)
    assert counting.unwraps == 4


def test_a_cached_key_is_still_checked_every_time(engine, counting):
    """The cache holds the value only: state and usage are read on every operation."""
    keys.configure(CryptoSettings(key_cache_size=10))
    uid = key(engine, V21, KEY)
    encrypt(engine, uid)
    revoke = item(
        Operation.REVOKE,
        unique_identifier=uid,
        revocation_reason=RevocationReason(code=RevocationReasonCode.CESSATION_OF_OPERATION),
    )
    ok(one(engine, V21, revoke))
    result = one(
        engine, V21, item(Operation.ENCRYPT, unique_identifier=uid, cryptographic_parameters=ECB, data=bytes(16))
    )
    assert result.result_reason == ResultReason.WRONG_KEY_LIFECYCLE_STATE


def test_an_operation_reads_only_the_attributes_it_needs(engine, counting, store_url):
    uid = key(engine, V21, KEY, extra=[Attribute(name="Cryptographic Parameters", value=ECB)])
    repository = Repository(store_url)
    try:
        with repository.write() as session:
            ctx = RequestContext(ClientIdentity("alice"), V21, session, counting, Policy(administrators=frozenset()), T0, Principal("alice"))
            used = keys.key_for(ctx, uid, usage=keys.Usage.ENCRYPT, protects=True, action="encrypt")
            assert set(used.obj.attributes.names()) - {"Sensitive", "Extractable", "Always Sensitive",
                                                       "Never Extractable", "Fresh", "Lease Time",
                                                       "Protection Storage Mask"} <= set(keys.USED_ATTRIBUTES)  # fmt: skip
            assert used.stored_parameters() == [ECB]
            assert used.raw() == KEY
            # A change of an attribute it did not read would replace what it did not see: refused.
            used.obj.attributes.add("Link", Link(link_type=LinkType.DERIVED_KEY_LINK, linked_object_identifier="x"))
            with pytest.raises(RuntimeError, match="'Link' .* was not loaded"):
                used.obj.save(ctx)
    finally:
        repository.dispose()
