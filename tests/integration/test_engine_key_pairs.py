"""Create Key Pair through the engine, on the real token and both stores: the two objects, their
links, attributes and formats in the 1.x and 2.x forms; keys that sign and verify (and decrypt)
through the server and check independently; every secret drawn from the token; the refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519

from kmip_client.protocol.model import Attribute, Attributes, Name, TemplateAttribute
from kmip_client.protocol.model.attributes import CryptographicDomainParameters, CryptographicParameters, Link
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    LinkType,
    NameType,
    ObjectType,
    Operation,
    PaddingMethod,
    RecommendedCurve,
    ResultReason,
    State,
    ValidityIndicator,
)
from kmip_server.crypto_settings import CryptoSettings
from kmip_server.custody.pkcs11 import Pkcs11Custody
from kmip_server.engine.dispatcher import Dispatcher
from kmip_server.operations import key_pairs
from kmip_server.policy import Policy
from kmip_server.storage.repository import Repository

from .engine_support import Clock, DelegatingCustody, attributes_of, failure, one, run
from .kmip_messages import V14, V21, item, ok

A = CryptographicAlgorithm
R = ResultReason
Usage = CryptographicUsageMask
V13, V20 = (1, 3), (2, 0)
MESSAGE = b"the key pair signs this"


class RecordingCustody(DelegatingCustody):
    """The real token, with what it hands out for new keys recorded."""

    def __init__(self, real: Pkcs11Custody) -> None:
        super().__init__(real)
        self.randoms: list[bytes] = []
        self.rsa_generated = 0

    def random(self, length: int) -> bytes:
        value = self.real.random(length)
        self.randoms.append(value)
        return value

    def generate_rsa(self, bits: int, public_exponent: int) -> Any:
        self.rsa_generated += 1
        return self.real.generate_rsa(bits, public_exponent)


@pytest.fixture
def recording(custody: Pkcs11Custody) -> RecordingCustody:
    return RecordingCustody(custody)


@pytest.fixture
def engine(recording: RecordingCustody, store_url: str) -> Iterator[Dispatcher]:
    from kmip_server import operations  # noqa: F401

    repository = Repository(store_url)
    repository.create_schema()
    yield Dispatcher(repository, recording, Policy(administrators=frozenset({"admin"})), clock=Clock())
    repository.dispose()
    key_pairs.configure(CryptoSettings())


def _attr(name: str, value: Any) -> Attribute:
    return Attribute(name=name, value=value)


def _name(text: str) -> Attribute:
    return _attr("Name", Name(value=text, type=NameType.UNINTERPRETED_TEXT_STRING))


def pair_attribute_groups(version, common=(), private=(), public=()) -> dict[str, Any]:
    """The Common, Private and Public attribute fields of a key pair request in ``version``'s
    form (Template-Attributes or Attributes): Create Key Pair's and Re-key Key Pair's."""
    if version >= V20:
        return {
            "common_attributes": Attributes(attributes=tuple(common)),
            "private_key_attributes": Attributes(attributes=tuple(private)),
            "public_key_attributes": Attributes(attributes=tuple(public)),
        }
    return {
        "common_template_attribute": TemplateAttribute(attributes=tuple(common)),
        "private_key_template_attribute": TemplateAttribute(attributes=tuple(private)),
        "public_key_template_attribute": TemplateAttribute(attributes=tuple(public)),
    }


def key_pair_item(version, common=(), private=(), public=()) -> Any:
    """A Create Key Pair batch item in ``version``'s form."""
    return item(Operation.CREATE_KEY_PAIR, **pair_attribute_groups(version, common, private, public))


def create_pair(engine, version, common=(), private=(), public=()) -> tuple[str, str]:
    made = ok(one(engine, version, key_pair_item(version, common, private, public)))
    return made.private_key_unique_identifier, made.public_key_unique_identifier


def rsa_common(bits: int = 2048) -> list[Attribute]:
    return [_attr("Cryptographic Algorithm", A.RSA), _attr("Cryptographic Length", bits)]


def got(engine, version, uid) -> Any:
    return ok(one(engine, version, item(Operation.GET, unique_identifier=uid)))


def material(engine, version, uid) -> tuple[KeyFormatType, bytes]:
    block = got(engine, version, uid).managed_object.key_block
    return block.key_format_type, block.key_value.key_material


def activate(engine, version, *uids: str) -> None:
    for uid in uids:
        ok(one(engine, version, item(Operation.ACTIVATE, unique_identifier=uid)))


def sign(engine, version, uid, params) -> bytes:
    return ok(
        one(engine, version, item(Operation.SIGN, unique_identifier=uid, cryptographic_parameters=params, data=MESSAGE))
    ).signature_data


def verify(engine, version, uid, params, signature) -> ValidityIndicator:
    request = item(
        Operation.SIGNATURE_VERIFY,
        unique_identifier=uid,
        cryptographic_parameters=params,
        data=MESSAGE,
        signature_data=signature,
    )
    return ok(one(engine, version, request)).validity_indicator


RSA_SHA256 = CryptographicParameters(
    padding_method=PaddingMethod.PKCS1_V1_5, hashing_algorithm=HashingAlgorithm.SHA_256
)


@pytest.mark.parametrize("version", [V13, V14, V20, V21])
def test_an_rsa_pair_is_two_linked_objects_made_by_the_token(engine, recording, version):
    private_uid, public_uid = create_pair(
        engine,
        version,
        rsa_common(),
        [_name("pair-private"), _attr("Cryptographic Usage Mask", int(Usage.SIGN))],
        [_name("pair-public"), _attr("Cryptographic Usage Mask", int(Usage.VERIFY))],
    )
    assert recording.rsa_generated == 1 and private_uid != public_uid
    names = ("Object Type", "State", "Cryptographic Algorithm", "Cryptographic Length", "Cryptographic Usage Mask")
    names += ("Link", "Name", "Digest")
    private = attributes_of(engine, private_uid, version, names=names)
    public = attributes_of(engine, public_uid, version, names=names)
    assert (private["Object Type"], public["Object Type"]) == (ObjectType.PRIVATE_KEY, ObjectType.PUBLIC_KEY)
    assert private["State"] == public["State"] == State.PRE_ACTIVE
    assert private["Cryptographic Algorithm"] == public["Cryptographic Algorithm"] == A.RSA
    assert private["Cryptographic Length"] == public["Cryptographic Length"] == 2048
    assert (private["Cryptographic Usage Mask"], public["Cryptographic Usage Mask"]) == (Usage.SIGN, Usage.VERIFY)
    assert private["Link"] == Link(link_type=LinkType.PUBLIC_KEY_LINK, linked_object_identifier=public_uid)
    assert public["Link"] == Link(link_type=LinkType.PRIVATE_KEY_LINK, linked_object_identifier=private_uid)
    assert (private["Name"].value, public["Name"].value) == ("pair-private", "pair-public")
    # Stored as PKCS#1, as the AKLC vectors' Digests name it; each Digest is of those bytes.
    private_format, private_der = material(engine, version, private_uid)
    public_format, public_der = material(engine, version, public_uid)
    assert private_format == public_format == KeyFormatType.PKCS_1
    assert private["Digest"].key_format_type == KeyFormatType.PKCS_1
    assert private["Digest"].digest_value == _sha256(private_der) and public["Digest"].digest_value == _sha256(
        public_der
    )
    key = serialization.load_der_private_key(private_der, password=None)  # every check OpenSSL has
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert key.public_key().public_numbers() == serialization.load_der_public_key(_spki(public_der)).public_numbers()


def _sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def _spki(pkcs1_public: bytes) -> bytes:
    # PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo, via the library (it reads both forms).
    public = serialization.load_der_public_key(pkcs1_public)
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("version", [V14, V21])
def test_the_pair_signs_verifies_and_decrypts_through_the_server(engine, version):
    private_uid, public_uid = create_pair(engine, version, rsa_common())  # the default masks
    activate(engine, version, private_uid, public_uid)
    signature = sign(engine, version, private_uid, RSA_SHA256)
    assert verify(engine, version, public_uid, RSA_SHA256, signature) == ValidityIndicator.VALID
    _, public_der = material(engine, version, public_uid)
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())  # independently
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    sealed = public.encrypt(b"for the private key", oaep)
    params = CryptographicParameters(
        padding_method=PaddingMethod.OAEP,
        hashing_algorithm=HashingAlgorithm.SHA_256,
        mask_generator_hashing_algorithm=HashingAlgorithm.SHA_256,
    )
    decrypted = ok(
        one(
            engine,
            version,
            item(Operation.DECRYPT, unique_identifier=private_uid, cryptographic_parameters=params, data=sealed),
        )
    )
    assert decrypted.data == b"for the private key"


@pytest.mark.parametrize(
    ("how", "curve", "bits"),
    [
        ("domain", RecommendedCurve.P_256, 256),
        ("length", RecommendedCurve.P_384, 384),
        ("domain", RecommendedCurve.P_521, 521),
    ],
)
def test_nist_curve_pairs_from_the_tokens_generator(engine, recording, how, curve, bits):
    given = [_attr("Cryptographic Algorithm", A.ECDSA)]
    if how == "domain":
        given.append(_attr("Cryptographic Domain Parameters", CryptographicDomainParameters(recommended_curve=curve)))
    else:
        given.append(_attr("Cryptographic Length", bits))
    private_uid, public_uid = create_pair(engine, V21, given)
    private_format, private_der = material(engine, V21, private_uid)
    public_format, public_der = material(engine, V21, public_uid)
    assert (private_format, public_format) == (KeyFormatType.ECPRIVATEKEY, KeyFormatType.X_509)
    key = serialization.load_der_private_key(private_der, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size == bits
    # The scalar is the token's draw (64 bits more than the order), reduced into [1, n-1].
    drawn = int.from_bytes(recording.randoms[-1], "big")
    assert len(recording.randoms[-1]) == (bits + 64 + 7) // 8
    assert key.private_numbers().private_value == drawn % (key_pairs._ORDERS[curve] - 1) + 1
    assert attributes_of(engine, private_uid, V21, names=("Cryptographic Length",))["Cryptographic Length"] == bits
    activate(engine, V21, private_uid, public_uid)
    params = CryptographicParameters(hashing_algorithm=HashingAlgorithm.SHA_256)
    signature = sign(engine, V21, private_uid, params)
    assert verify(engine, V21, public_uid, params, signature) == ValidityIndicator.VALID
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256()))


def test_ed25519_pair_is_the_tokens_bytes_and_signs(engine, recording):
    private_uid, public_uid = create_pair(engine, V21, [_attr("Cryptographic Algorithm", A.ED25519)])
    _, private_der = material(engine, V21, private_uid)
    key = serialization.load_der_private_key(private_der, password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert key.private_bytes_raw() == recording.randoms[-1]  # RFC 8032: the private key is 32 random bytes
    masks = [
        attributes_of(engine, uid, V21, names=("Cryptographic Usage Mask",))["Cryptographic Usage Mask"]
        for uid in (private_uid, public_uid)
    ]
    assert masks == [Usage.SIGN, Usage.VERIFY]
    activate(engine, V21, private_uid, public_uid)
    signature = sign(engine, V21, private_uid, None)
    assert verify(engine, V21, public_uid, None, signature) == ValidityIndicator.VALID
    key.public_key().verify(signature, MESSAGE)


def test_x25519_pair_is_for_key_agreement(engine, recording):
    curve = CryptographicDomainParameters(recommended_curve=RecommendedCurve.CURVE25519)
    private_uid, public_uid = create_pair(
        engine, V21, [_attr("Cryptographic Algorithm", A.ECDH), _attr("Cryptographic Domain Parameters", curve)]
    )
    _, private_der = material(engine, V21, private_uid)
    key = serialization.load_der_private_key(private_der, password=None)
    assert isinstance(key, x25519.X25519PrivateKey) and key.private_bytes_raw() == recording.randoms[-1]
    for uid in (private_uid, public_uid):
        assert attributes_of(engine, uid, V21, names=("Cryptographic Usage Mask",))["Cryptographic Usage Mask"] == (
            Usage.KEY_AGREEMENT
        )


def test_own_attributes_take_precedence_over_common_ones(engine):
    private_uid, public_uid = create_pair(
        engine,
        V14,
        [*rsa_common(), _attr("Cryptographic Usage Mask", int(Usage.SIGN | Usage.VERIFY)), _attr("Object Group", "g")],
        [_attr("Cryptographic Usage Mask", int(Usage.SIGN))],
    )
    names = ("Cryptographic Usage Mask", "Object Group")
    assert attributes_of(engine, private_uid, V14, names=names) == {
        "Cryptographic Usage Mask": Usage.SIGN,
        "Object Group": "g",
    }
    assert attributes_of(engine, public_uid, V14, names=names) == {
        "Cryptographic Usage Mask": Usage.SIGN | Usage.VERIFY,
        "Object Group": "g",
    }


def test_the_id_placeholder_is_the_private_key(engine):
    result = run(engine, V21, key_pair_item(V21, rsa_common()), item(Operation.ACTIVATE))
    made, activated = result.batch_items
    assert ok(activated).unique_identifier == ok(made).private_key_unique_identifier


@pytest.mark.parametrize(
    ("version", "common", "reason"),
    [
        (V14, [_attr("Cryptographic Length", 2048)], R.INVALID_FIELD),
        (V21, [_attr("Cryptographic Length", 2048)], R.MISSING_DATA),
        (V14, rsa_common(1024), R.INVALID_FIELD),
        (V21, rsa_common(1024), R.INVALID_ATTRIBUTE_VALUE),
        (V21, rsa_common(2049), R.INVALID_ATTRIBUTE_VALUE),
        (V21, [_attr("Cryptographic Algorithm", A.RSA)], R.MISSING_DATA),
        (
            V21,
            [_attr("Cryptographic Algorithm", A.DSA), _attr("Cryptographic Length", 2048)],
            R.INVALID_ATTRIBUTE_VALUE,
        ),
        (
            V21,
            [_attr("Cryptographic Algorithm", A.ECDSA), _attr("Cryptographic Length", 255)],
            R.INVALID_ATTRIBUTE_VALUE,
        ),
        (
            V21,
            [
                _attr("Cryptographic Algorithm", A.ECDSA),
                _attr(
                    "Cryptographic Domain Parameters",
                    CryptographicDomainParameters(recommended_curve=RecommendedCurve.CURVE25519),
                ),
            ],
            R.INVALID_ATTRIBUTE_VALUE,
        ),
    ],
)
def test_refusals(engine, recording, version, common, reason):
    message = failure(one(engine, version, key_pair_item(version, common)), reason)
    assert message
    assert recording.rsa_generated == 0  # nothing was generated, nothing stored
    located = ok(one(engine, V21, item(Operation.LOCATE, attributes=Attributes(attributes=()))))
    assert not located.unique_identifiers


def test_private_and_public_must_agree_on_the_algorithm(engine):
    result = one(
        engine,
        V21,
        key_pair_item(
            V21,
            [_attr("Cryptographic Length", 2048)],
            [_attr("Cryptographic Algorithm", A.RSA)],
            [_attr("Cryptographic Algorithm", A.ECDSA)],
        ),
    )
    assert "different Cryptographic Algorithm" in failure(result, R.INVALID_FIELD)


def test_shorter_rsa_keys_where_the_settings_allow(engine):
    key_pairs.configure(CryptoSettings(rsa_min_bits=1024))
    private_uid, _ = create_pair(engine, V14, rsa_common(1024))
    _, der = material(engine, V14, private_uid)
    key = serialization.load_der_private_key(der, password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 1024


class LockProbingCustody(RecordingCustody):
    """Records, at each RSA generation, whether another connection could take SQLite's write
    lock then: whether the generation ran outside the message's write transaction."""

    def __init__(self, real: Pkcs11Custody, database: str) -> None:
        super().__init__(real)
        self.database = database
        self.lock_free: list[bool] = []

    def generate_rsa(self, bits: int, public_exponent: int) -> Any:
        import sqlite3

        probe = sqlite3.connect(self.database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            self.lock_free.append(True)
        except sqlite3.OperationalError:
            self.lock_free.append(False)
        finally:
            probe.close()
        return super().generate_rsa(bits, public_exponent)


def test_rsa_generation_holds_no_write_lock(custody, tmp_path):
    from kmip_server import operations  # noqa: F401

    database = tmp_path / "probe.db"
    repository = Repository(f"sqlite:///{database}")
    repository.create_schema()
    probing = LockProbingCustody(custody, str(database))
    engine = Dispatcher(repository, probing, Policy(administrators=frozenset({"admin"})), clock=Clock())
    try:
        private_uid, _ = create_pair(engine, V21, rsa_common())
        assert probing.lock_free == [True]  # generated before the write transaction began
        rekeyed = ok(one(engine, V21, item(Operation.RE_KEY_KEY_PAIR, private_key_unique_identifier=private_uid)))
        assert rekeyed.private_key_unique_identifier != private_uid
        assert probing.lock_free == [True, False]  # Re-key Key Pair still generates in the transaction
    finally:
        repository.dispose()
