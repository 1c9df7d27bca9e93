"""Re-key and Re-key Key Pair through the engine, on the real token and both stores, in the 1.4
(Template-Attribute) and 2.1 (Attributes) forms: the replacement's value drawn from the token,
the old key's attributes copied, its Names moved, the links both ways, the dates with and
without an Offset at exact times, the state that follows, both keys still usable, the ID
Placeholder in a batch, and each refusal with its Result Reason in each version."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kmip_client.protocol.model import Attribute, Attributes, Name
from kmip_client.protocol.model.attributes import CryptographicParameters, Link, RevocationReason, UsageLimits
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, PrivateKey, SymmetricKey
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    LinkType,
    NameType,
    ObjectType,
    Operation,
    PaddingMethod,
    ResultReason,
    RevocationReasonCode,
    State,
    UsageLimitsUnit,
    ValidityIndicator,
)
from kmip_server.custody.pkcs11 import Pkcs11Custody
from kmip_server.engine.dispatcher import Dispatcher
from kmip_server.policy import Policy
from kmip_server.storage.repository import Repository

from .engine_support import BOB, T0, Clock, failure, one, register, run
from .kmip_messages import V14, V21, at, attrs_for, create_aes, item, ok
from .test_engine_key_pairs import (
    MESSAGE,
    RSA_SHA256,
    RecordingCustody,
    create_pair,
    pair_attribute_groups,
    rsa_common,
    sign,
    verify,
)

A = CryptographicAlgorithm
R = ResultReason
Usage = CryptographicUsageMask
BOTH = [V14, V21]
CBC = CryptographicParameters(block_cipher_mode=BlockCipherMode.CBC, padding_method=PaddingMethod.PKCS5)
IV = bytes(range(16))


@pytest.fixture
def recording(custody: Pkcs11Custody) -> RecordingCustody:
    return RecordingCustody(custody)


@pytest.fixture
def engine(recording: RecordingCustody, store_url: str, clock: Clock) -> Iterator[Dispatcher]:
    from kmip_server import operations  # noqa: F401

    repository = Repository(store_url)
    repository.create_schema()
    yield Dispatcher(repository, recording, Policy(administrators=frozenset({"admin"})), clock=clock)
    repository.dispose()


# ---- requests and reading back


def _attr(name: str, value: Any) -> Attribute:
    return Attribute(name=name, value=value)


def _name(text: str) -> Attribute:
    return _attr("Name", Name(value=text, type=NameType.UNINTERPRETED_TEXT_STRING))


def _custom(version, value: str) -> Attribute:
    return Attribute(name="owner", vendor="x", value=value) if version >= (2, 0) else _attr("x-owner", value)


def rekey_item(version, uid=None, offset=None, attributes=()) -> Any:
    return item(Operation.RE_KEY, unique_identifier=uid, offset=offset, **attrs_for(version, list(attributes)))


def rekey_pair_item(version, uid=None, offset=None, common=(), private=(), public=()) -> Any:
    groups = pair_attribute_groups(version, common, private, public)
    return item(Operation.RE_KEY_KEY_PAIR, private_key_unique_identifier=uid, offset=offset, **groups)


def rekey(engine, version, uid, offset=None, attributes=()) -> str:
    return ok(one(engine, version, rekey_item(version, uid, offset, attributes))).unique_identifier


def rekey_pair(engine, version, uid, offset=None, **groups) -> tuple[str, str]:
    made = ok(one(engine, version, rekey_pair_item(version, uid, offset, **groups)))
    return made.private_key_unique_identifier, made.public_key_unique_identifier


def create_key(engine, version, name="payroll", extra=()) -> str:
    return ok(one(engine, version, create_aes(version, name=name, extra=list(extra)))).unique_identifier


def everything(engine, version, uid) -> dict[str, list[Any]]:
    """Every attribute of ``uid`` as the version shows it: name -> all its values."""
    request = item(Operation.GET_ATTRIBUTES, unique_identifier=uid)
    payload = ok(one(engine, version, request))
    found = payload.attributes.attributes if version >= (2, 0) else payload.attribute_list
    values: dict[str, list[Any]] = {}
    for attr in found:
        values.setdefault(attr.name if attr.vendor is None else f"{attr.vendor}-{attr.name}", []).append(attr.value)
    return values


def material(engine, version, uid) -> bytes:
    got = ok(one(engine, version, item(Operation.GET, unique_identifier=uid)))
    return got.managed_object.key_block.key_value.key_material


def link(link_type: LinkType, uid: str) -> Link:
    return Link(link_type=link_type, linked_object_identifier=uid)


def replaced(uid: str) -> Link:
    return link(LinkType.REPLACED_OBJECT_LINK, uid)


def replacement(uid: str) -> Link:
    return link(LinkType.REPLACEMENT_OBJECT_LINK, uid)


def stored_uids(engine) -> set[str]:
    located = ok(one(engine, V21, item(Operation.LOCATE, attributes=Attributes(attributes=()))))
    return set(located.unique_identifiers)


# ---- Re-key


@pytest.mark.parametrize("version", BOTH)
def test_the_replacement_is_the_tokens_new_key_with_the_old_ones_attributes(engine, recording, clock, version):
    params = CryptographicParameters(block_cipher_mode=BlockCipherMode.GCM, tag_length=16)
    old = create_key(
        engine,
        version,
        extra=[
            _attr("Object Group", "payments"),
            _attr("Contact Information", "ops@example.com"),
            _attr("Comment", "rotated yearly"),
            _attr("Cryptographic Parameters", params),
            _custom(version, "team-7"),
            _attr("Activation Date", at(T0 - 600)),
            _attr("Process Start Date", at(T0 - 500)),
            _attr("Protect Stop Date", at(T0 + 7000)),
            _attr("Deactivation Date", at(T0 + 9000)),
        ],
    )
    before = everything(engine, version, old)
    old_value = material(engine, version, old)
    clock.now = T0 + 120
    new = rekey(engine, version, old)
    assert new != old
    assert everything(engine, version, new)["Fresh"] == [True]  # until Get serves its value
    # Its value is the token's newest draw: 32 bytes, not the old key's.
    value = material(engine, version, new)
    assert value == recording.randoms[-1] and len(value) == 32 and value != old_value
    got = everything(engine, version, new)
    for name in (
        "Cryptographic Algorithm",
        "Cryptographic Length",
        "Cryptographic Usage Mask",
        "Cryptographic Parameters",
        "Object Group",
        "Contact Information",
        "Comment",
        "x-owner",
        "Random Number Generator",
        "Sensitive",
        "Extractable",
        # No Offset: the dates are the old key's.
        "Activation Date",
        "Process Start Date",
        "Protect Stop Date",
        "Deactivation Date",
    ):
        assert got[name] == before[name], name
    assert got["Object Type"] == [ObjectType.SYMMETRIC_KEY]
    assert got["Name"] == before["Name"] and got["Name"][0].value == "payroll"
    assert got["State"] == [State.ACTIVE]  # its Activation Date has passed
    assert got["Initial Date"] == got["Last Change Date"] == got["Original Creation Date"] == [at(T0 + 120)]
    assert got["Digest"][0].digest_value == hashlib.sha256(value).digest()
    assert got["Link"] == [replaced(old)]
    assert "Key Value Location" not in got and "Usage Limits" not in got
    # The old key: its Name gone to the replacement, linked to it, changed now, still Active.
    after = everything(engine, version, old)
    assert "Name" not in after
    assert after["Link"] == [replacement(new)]
    assert after["Last Change Date"] == [at(T0 + 120)] and after["Initial Date"] == before["Initial Date"]
    assert after["State"] == [State.ACTIVE]
    assert material(engine, version, old) == old_value


@pytest.mark.parametrize("version", BOTH)
def test_the_offset_places_the_new_dates_from_the_old_ones(engine, clock, version):
    old = create_key(
        engine,
        version,
        extra=[
            _attr("Activation Date", at(T0 + 100)),
            _attr("Process Start Date", at(T0 + 250)),
            _attr("Protect Stop Date", at(T0 + 4000)),
            _attr("Deactivation Date", at(T0 + 5000)),
        ],
    )
    clock.now = T0 + 40
    new = rekey(engine, version, old, offset=3600)
    got = everything(engine, version, new)
    activation = T0 + 40 + 3600  # the Initial Date plus the Offset
    shift = activation - (T0 + 100)
    assert got["Initial Date"] == [at(T0 + 40)]
    assert got["Activation Date"] == [at(activation)]
    assert got["Process Start Date"] == [at(T0 + 250 + shift)]
    assert got["Protect Stop Date"] == [at(T0 + 4000 + shift)]
    assert got["Deactivation Date"] == [at(T0 + 5000 + shift)]
    assert got["State"] == [State.PRE_ACTIVE]
    clock.now = activation
    assert everything(engine, version, new)["State"] == [State.ACTIVE]
    clock.now = T0 + 5000 + shift
    assert everything(engine, version, new)["State"] == [State.DEACTIVATED]


@pytest.mark.parametrize("version", BOTH)
def test_an_offset_of_zero_activates_now_and_one_without_old_dates_sets_only_activation(engine, clock, version):
    plain = create_key(engine, version)  # Pre-Active, no dates
    clock.now = T0 + 7
    new = rekey(engine, version, plain, offset=0)
    got = everything(engine, version, new)
    assert got["Activation Date"] == [at(T0 + 7)] and got["State"] == [State.ACTIVE]
    for name in ("Process Start Date", "Protect Stop Date", "Deactivation Date"):
        assert name not in got
    later = rekey(engine, version, create_key(engine, version, name="other"), offset=60)
    assert everything(engine, version, later)["State"] == [State.PRE_ACTIVE]


@pytest.mark.parametrize("version", BOTH)
def test_without_an_offset_a_pre_active_key_gives_a_pre_active_replacement(engine, version):
    new = rekey(engine, version, create_key(engine, version))
    got = everything(engine, version, new)
    assert got["State"] == [State.PRE_ACTIVE] and "Activation Date" not in got


@pytest.mark.parametrize("version", BOTH)
def test_the_requests_attributes_take_the_place_of_the_copied_ones(engine, recording, version):
    old = create_key(engine, version, extra=[_attr("Object Group", "old-group")])
    new = rekey(
        engine,
        version,
        old,
        attributes=[
            _name("payroll-v2"),
            _attr("Object Group", "new-group"),
            _attr("Cryptographic Length", 128),
            _attr("Cryptographic Usage Mask", int(Usage.ENCRYPT)),
        ],
    )
    got = everything(engine, version, new)
    assert [n.value for n in got["Name"]] == ["payroll-v2"]
    assert got["Object Group"] == ["new-group"]
    assert got["Cryptographic Length"] == [128] and len(material(engine, version, new)) == 16
    assert got["Cryptographic Usage Mask"] == [Usage.ENCRYPT]
    # The replacement was named by the request: the old key keeps its own Name.
    after = everything(engine, version, old)
    assert [n.value for n in after["Name"]] == ["payroll"] and after["Link"] == [replacement(new)]


@pytest.mark.parametrize("version", BOTH)
def test_usage_limits_total_copied_and_the_new_keys_count_is_whole(engine, version):
    limits = UsageLimits(total=4096, count=100, unit=UsageLimitsUnit.BYTE)
    old = create_key(engine, version, extra=[_attr("Usage Limits", limits)])
    new = rekey(engine, version, old)
    assert everything(engine, version, new)["Usage Limits"] == [UsageLimits(total=4096, count=4096, unit=limits.unit)]
    assert everything(engine, version, old)["Usage Limits"] == [limits]


@pytest.mark.parametrize("version", BOTH)
def test_a_compromised_keys_replacement_has_none_of_its_history(engine, clock, version):
    old = create_key(engine, version, extra=[_attr("Activation Date", at(T0 - 60))])
    reason = RevocationReason(code=RevocationReasonCode.KEY_COMPROMISE, message="leaked")
    revoke = item(Operation.REVOKE, unique_identifier=old, revocation_reason=reason, compromise_occurrence_date=at(1))
    ok(one(engine, version, revoke))
    clock.now = T0 + 30
    new = rekey(engine, version, old)
    got = everything(engine, version, new)
    for name in ("Compromise Date", "Compromise Occurrence Date", "Revocation Reason", "Destroy Date"):
        assert name not in got, name
    assert got["State"] == [State.ACTIVE] and got["Activation Date"] == [at(T0 - 60)]
    assert everything(engine, version, old)["State"] == [State.COMPROMISED]


def _cbc(engine, version, operation: Operation, uid: str, data: bytes) -> bytes:
    request = item(operation, unique_identifier=uid, cryptographic_parameters=CBC, data=data, iv_counter_nonce=IV)
    return ok(one(engine, version, request)).data


@pytest.mark.parametrize("version", BOTH)
def test_the_new_key_encrypts_and_the_old_one_still_decrypts_its_data(engine, version):
    old = create_key(engine, version, extra=[_attr("Activation Date", at(T0 - 10))])
    sealed_by_old = _cbc(engine, version, Operation.ENCRYPT, old, b"a" * 40)
    new = rekey(engine, version, old)
    sealed_by_new = _cbc(engine, version, Operation.ENCRYPT, new, b"b" * 40)
    # The new key's ciphertext is AES-CBC under its value, checked outside the server.
    decryptor = Cipher(algorithms.AES(material(engine, version, new)), modes.CBC(IV)).decryptor()
    assert decryptor.update(sealed_by_new) + decryptor.finalize() == b"b" * 40 + bytes([8]) * 8
    assert _cbc(engine, version, Operation.DECRYPT, old, sealed_by_old) == b"a" * 40
    assert _cbc(engine, version, Operation.DECRYPT, new, sealed_by_new) == b"b" * 40


@pytest.mark.parametrize("version", BOTH)
def test_a_batch_creates_rekeys_and_activates_through_the_id_placeholder(engine, version):
    result = run(engine, version, create_aes(version, name="batch"), rekey_item(version), item(Operation.ACTIVATE))
    created, rekeyed, activated = (ok(r) for r in result.batch_items)
    assert rekeyed.unique_identifier != created.unique_identifier
    assert activated.unique_identifier == rekeyed.unique_identifier
    assert everything(engine, version, rekeyed.unique_identifier)["State"] == [State.ACTIVE]
    old = everything(engine, version, created.unique_identifier)
    assert old["State"] == [State.PRE_ACTIVE] and old["Link"] == [replacement(rekeyed.unique_identifier)]


def _valueless(version) -> Any:
    block = KeyBlock(key_format_type=KeyFormatType.RAW, cryptographic_algorithm=A.AES, cryptographic_length=256)
    return item(
        Operation.REGISTER,
        object_type=ObjectType.SYMMETRIC_KEY,
        managed_object=SymmetricKey(key_block=block),
        **attrs_for(version, [_name("elsewhere")]),
    )


def _destroyed_key(engine, version) -> str:
    uid = create_key(engine, version)
    ok(one(engine, version, item(Operation.DESTROY, unique_identifier=uid)))
    return uid


def _a_private_key(engine, version) -> str:
    return create_pair(engine, version, rsa_common())[0]


@pytest.mark.parametrize(
    ("case", "version", "reason"),
    [
        ("destroyed", V21, R.OBJECT_DESTROYED),
        ("destroyed", V14, R.ITEM_NOT_FOUND),
        ("private key", V21, R.INVALID_OBJECT_TYPE),
        ("private key", V14, R.ILLEGAL_OPERATION),
        ("no value", V21, R.KEY_VALUE_NOT_PRESENT),
        ("no value", V14, R.KEY_VALUE_NOT_PRESENT),
        ("offset and dates", V21, R.INVALID_MESSAGE),
        ("offset and dates", V14, R.INVALID_MESSAGE),
        ("offset without activation", V21, R.INVALID_FIELD),
        ("offset without activation", V14, R.ILLEGAL_OPERATION),
        ("no such key", V21, R.OBJECT_NOT_FOUND),
        ("no such key", V14, R.ITEM_NOT_FOUND),
        ("read-only attribute", V21, R.ATTRIBUTE_READ_ONLY),
        ("read-only attribute", V14, R.PERMISSION_DENIED),
    ],
)
def test_rekey_refusals(engine, case, version, reason):
    offset, attributes = None, []
    if case == "destroyed":
        uid = _destroyed_key(engine, version)
    elif case == "private key":
        uid = _a_private_key(engine, version)
    elif case == "no value":
        uid = ok(one(engine, version, _valueless(version))).unique_identifier
    elif case == "offset and dates":
        uid, offset, attributes = create_key(engine, version), 60, [_attr("Activation Date", at(T0 + 5))]
    elif case == "offset without activation":
        uid, offset = create_key(engine, version, extra=[_attr("Deactivation Date", at(T0 + 500))]), 60
    elif case == "no such key":
        uid = "no-such-key"
    else:
        uid, attributes = create_key(engine, version), [_attr("Initial Date", at(T0))]
    before = stored_uids(engine)
    old = everything(engine, version, uid) if case not in ("no such key",) else None
    message = failure(one(engine, version, rekey_item(version, uid, offset, attributes)), reason)
    assert uid in message or case in ("offset and dates", "read-only attribute")
    assert stored_uids(engine) == before  # nothing new was stored
    if old is not None:
        assert everything(engine, version, uid) == old  # and the old key is as it was


@pytest.mark.parametrize("version", BOTH)
def test_another_clients_key_is_not_replaced(engine, version):
    uid = create_key(engine, version)
    failure(one(engine, version, rekey_item(version, uid), identity=BOB), R.OBJECT_NOT_FOUND if version >= (2, 0) else R.ITEM_NOT_FOUND)  # hidden from bob
    assert [n.value for n in everything(engine, version, uid)["Name"]] == ["payroll"]


# ---- Re-key Key Pair


@pytest.mark.parametrize("version", BOTH)
def test_rekey_key_pair_replaces_both_keys_linked_to_each_other_and_the_old_pair(engine, recording, clock, version):
    active = _attr("Activation Date", at(T0 - 100))
    old_private, old_public = create_pair(
        engine,
        version,
        [*rsa_common(), active, _attr("Object Group", "signers")],
        [_name("signer"), _attr("Cryptographic Usage Mask", int(Usage.SIGN))],
        [_name("signer-public"), _attr("Cryptographic Usage Mask", int(Usage.VERIFY))],
    )
    old_signature = sign(engine, version, old_private, RSA_SHA256)
    old_public_value = material(engine, version, old_public)
    clock.now = T0 + 45
    private, public = rekey_pair(engine, version, old_private)
    assert recording.rsa_generated == 2  # the old pair's and the new one's, each by the token
    assert len({private, public, old_private, old_public}) == 4
    new_private, new_public = everything(engine, version, private), everything(engine, version, public)
    assert new_private["Object Type"] == [ObjectType.PRIVATE_KEY] and new_public["Object Type"] == [
        ObjectType.PUBLIC_KEY
    ]
    assert new_private["Link"] == [replaced(old_private), link(LinkType.PUBLIC_KEY_LINK, public)]
    assert new_public["Link"] == [replaced(old_public), link(LinkType.PRIVATE_KEY_LINK, private)]
    assert [n.value for n in new_private["Name"]] == ["signer"]
    assert [n.value for n in new_public["Name"]] == ["signer-public"]
    assert new_private["Cryptographic Usage Mask"] == [Usage.SIGN] and new_public["Cryptographic Usage Mask"] == [
        Usage.VERIFY
    ]
    for got in (new_private, new_public):
        assert got["Cryptographic Algorithm"] == [A.RSA] and got["Cryptographic Length"] == [2048]
        assert got["Object Group"] == ["signers"] and got["Activation Date"] == [at(T0 - 100)]
        assert got["State"] == [State.ACTIVE]
        assert got["Initial Date"] == got["Original Creation Date"] == [at(T0 + 45)]
    for old, new in ((old_private, private), (old_public, public)):
        after = everything(engine, version, old)
        assert "Name" not in after and after["State"] == [State.ACTIVE]
        assert after["Link"][-1] == replacement(new)
    new_public_value = material(engine, version, public)
    assert new_public_value != old_public_value
    assert new_public["Digest"][0].digest_value == hashlib.sha256(new_public_value).digest()
    # The new pair signs and verifies; the old public key still verifies the old signature.
    signature = sign(engine, version, private, RSA_SHA256)
    assert verify(engine, version, public, RSA_SHA256, signature) == ValidityIndicator.VALID
    assert verify(engine, version, old_public, RSA_SHA256, old_signature) == ValidityIndicator.VALID
    assert verify(engine, version, public, RSA_SHA256, old_signature) == ValidityIndicator.INVALID
    checked = serialization.load_der_public_key(new_public_value)
    checked.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]


@pytest.mark.parametrize("version", BOTH)
def test_rekey_key_pair_with_an_offset_and_the_requests_attributes(engine, clock, version):
    old_private, old_public = create_pair(
        engine,
        version,
        [*rsa_common(), _attr("Activation Date", at(T0 + 10)), _attr("Deactivation Date", at(T0 + 1010))],
        [_name("signer")],
        [_name("signer-public")],
    )
    clock.now = T0 + 5
    private, public = rekey_pair(
        engine,
        version,
        old_private,
        offset=300,
        common=[_attr("Object Group", "rotated")],
        private=[_name("signer-2")],
    )
    for uid in (private, public):
        got = everything(engine, version, uid)
        assert got["Activation Date"] == [at(T0 + 305)] and got["Deactivation Date"] == [at(T0 + 1305)]
        assert got["State"] == [State.PRE_ACTIVE] and got["Object Group"] == ["rotated"]
    # The private key was named by the request, the public one took the old public key's Name.
    assert [n.value for n in everything(engine, version, private)["Name"]] == ["signer-2"]
    assert [n.value for n in everything(engine, version, old_private)["Name"]] == ["signer"]
    assert [n.value for n in everything(engine, version, public)["Name"]] == ["signer-public"]
    assert "Name" not in everything(engine, version, old_public)


def test_an_ecdsa_pair_is_replaced_on_its_curve_from_the_tokens_draw(engine, recording):
    old_private, _ = create_pair(
        engine, V21, [_attr("Cryptographic Algorithm", A.ECDSA), _attr("Cryptographic Length", 384)]
    )
    private, public = rekey_pair(engine, V21, old_private, offset=0)
    key = serialization.load_der_private_key(material(engine, V21, private), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    assert len(recording.randoms[-1]) == (384 + 64 + 7) // 8
    params = CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256)
    assert verify(engine, V21, public, params, sign(engine, V21, private, params)) == ValidityIndicator.VALID


@pytest.mark.parametrize("version", BOTH)
def test_a_batch_rekeys_a_pair_and_activates_its_private_key(engine, version):
    old_private, _ = create_pair(engine, version, rsa_common())
    result = run(engine, version, rekey_pair_item(version, old_private), item(Operation.ACTIVATE))
    rekeyed, activated = (ok(r) for r in result.batch_items)
    assert activated.unique_identifier == rekeyed.private_key_unique_identifier
    assert everything(engine, version, rekeyed.private_key_unique_identifier)["State"] == [State.ACTIVE]
    assert everything(engine, version, rekeyed.public_key_unique_identifier)["State"] == [State.PRE_ACTIVE]


def _lone_private_key(engine, version) -> str:
    """A Private Key registered without its public key (so without a Public Key Link)."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    block = KeyBlock(
        key_format_type=KeyFormatType.PKCS_8,
        key_value=KeyValue(key_material=der),
        cryptographic_algorithm=A.ECDSA,
        cryptographic_length=256,
    )
    mask = [_attr("Cryptographic Usage Mask", int(Usage.SIGN))]
    return register(engine, version, ObjectType.PRIVATE_KEY, PrivateKey(key_block=block), mask)


@pytest.mark.parametrize(
    ("case", "version", "reason"),
    [
        ("symmetric key", V21, R.INVALID_OBJECT_TYPE),
        ("symmetric key", V14, R.ILLEGAL_OPERATION),
        ("public key", V21, R.INVALID_OBJECT_TYPE),
        ("public key", V14, R.ILLEGAL_OPERATION),
        ("destroyed", V21, R.OBJECT_DESTROYED),
        ("destroyed", V14, R.ITEM_NOT_FOUND),
        ("no public key", V21, R.OBJECT_NOT_FOUND),
        ("no public key", V14, R.ITEM_NOT_FOUND),
        ("offset and dates", V21, R.INVALID_MESSAGE),
        ("offset and dates", V14, R.INVALID_MESSAGE),
    ],
)
def test_rekey_key_pair_refusals(engine, recording, case, version, reason):
    offset, common = None, []
    if case == "symmetric key":
        uid = create_key(engine, version)
    elif case == "public key":
        uid = create_pair(engine, version, rsa_common())[1]
    elif case == "destroyed":
        uid = _a_private_key(engine, version)
        ok(one(engine, version, item(Operation.DESTROY, unique_identifier=uid)))
    elif case == "no public key":
        uid = _lone_private_key(engine, version)
    else:
        uid, offset, common = _a_private_key(engine, version), 60, [_attr("Deactivation Date", at(T0 + 900))]
    before, generated = stored_uids(engine), recording.rsa_generated
    message = failure(one(engine, version, rekey_pair_item(version, uid, offset, common=common)), reason)
    assert uid in message or case == "offset and dates"
    assert stored_uids(engine) == before and recording.rsa_generated == generated
