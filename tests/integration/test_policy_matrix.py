"""The access matrix: operations × roles × the tenant boundary, in KMIP 1.4 and 2.1, each
allowed, refused or hidden exactly as policies/example.toml says (the HTTPS leg is in
test_policy_https.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kmip_client.protocol.model import Attribute, Attributes
from kmip_client.protocol.model.attributes import Name, RevocationReason
from kmip_client.protocol.spec.enums import (
    BlockCipherMode,
    Operation,
    PaddingMethod,
    ResultReason,
    ResultStatus,
    RevocationReasonCode,
)
from kmip_server.engine.identity import ClientIdentity
from kmip_server.policy import load_policy, parse_policy

from .engine_support import one
from .kmip_messages import V14, V21, create_aes, item, ok

EXAMPLE = Path(__file__).resolve().parents[2] / "policies" / "example.toml"

OWNER = ClientIdentity("fin-alice")
ROLES = {
    "owner": OWNER,
    "other identity": ClientIdentity("fin-bob"),
    "tenant admin": ClientIdentity("fin-admin"),
    "global admin": ClientIdentity("admin"),
    "auditor": ClientIdentity("fin-audit"),
    "other tenant": ClientIdentity("eng-carol"),
    "other tenant admin": ClientIdentity("fin-admin-x"),  # same role, still finance: allowed
}
ALLOWED, DENIED, HIDDEN = "allowed", "denied", "hidden"
FULL = {"owner", "tenant admin", "global admin", "other tenant admin"}
# What example.toml grants the auditor on another's object: metadata only.
AUDITOR_OPS = {"Get Attributes", "Get Attribute List", "Check", "Locate"}


def expected(role: str, operation: str) -> str:
    if role in FULL:
        return ALLOWED
    if role == "auditor":
        return ALLOWED if operation in AUDITOR_OPS else DENIED
    return HIDDEN  # another identity of the tenant without a grant, or another tenant


def _cbc(version):
    from kmip_client.protocol.model.attributes import CryptographicParameters

    return CryptographicParameters(block_cipher_mode=BlockCipherMode.CBC, padding_method=PaddingMethod.PKCS5)


def _note(version):
    if version < V21:
        return {"attribute": Attribute(name="x-note", value="hello")}
    return {"new_attribute": Attributes(attributes=(Attribute(name="note", vendor="x", value="hello"),))}


OPERATIONS: dict[str, Callable[[tuple[int, int], str], object]] = {
    "Get": lambda v, uid: item(Operation.GET, unique_identifier=uid),
    "Get Attributes": lambda v, uid: item(Operation.GET_ATTRIBUTES, unique_identifier=uid),
    "Get Attribute List": lambda v, uid: item(Operation.GET_ATTRIBUTE_LIST, unique_identifier=uid),
    "Add Attribute": lambda v, uid: item(Operation.ADD_ATTRIBUTE, unique_identifier=uid, **_note(v)),
    "Activate": lambda v, uid: item(Operation.ACTIVATE, unique_identifier=uid),
    "Revoke": lambda v, uid: item(
        Operation.REVOKE,
        unique_identifier=uid,
        revocation_reason=RevocationReason(code=RevocationReasonCode.CESSATION_OF_OPERATION),
    ),
    "Destroy": lambda v, uid: item(Operation.DESTROY, unique_identifier=uid),
    "Check": lambda v, uid: item(Operation.CHECK, unique_identifier=uid),
    "Encrypt": lambda v, uid: item(
        Operation.ENCRYPT,
        unique_identifier=uid,
        cryptographic_parameters=_cbc(v),
        data=b"0123456789abcdef",
        iv_counter_nonce=bytes(16),
    ),
    "Re-key": lambda v, uid: item(Operation.RE_KEY, unique_identifier=uid),
}
# These need an Active key to succeed for those allowed.
NEEDS_ACTIVE = {"Encrypt", "Re-key"}


@pytest.fixture
def example(engine):
    engine.reload_policy(load_policy(EXAMPLE).with_administrators(["admin"]))
    return engine


def _owned_key(engine, version, active: bool) -> str:
    uid = ok(one(engine, version, create_aes(version, name="matrix"), OWNER)).unique_identifier
    if active:
        ok(one(engine, version, item(Operation.ACTIVATE, unique_identifier=uid), OWNER))
    return uid


@pytest.mark.parametrize("version", [V14, V21], ids=["1.4", "2.1"])
@pytest.mark.parametrize("role", list(ROLES))
def test_operations_on_an_object_follow_the_policy(example, version, role) -> None:
    identity = ROLES[role]
    hidden_reason = ResultReason.OBJECT_NOT_FOUND if version >= V21 else ResultReason.ITEM_NOT_FOUND
    for operation, build in OPERATIONS.items():
        uid = _owned_key(example, version, operation in NEEDS_ACTIVE)
        result = one(example, version, build(version, uid), identity)
        want = expected(role, operation)
        where = f"{role} {operation} (KMIP {version[0]}.{version[1]})"
        if want == ALLOWED:
            assert result.result_status == ResultStatus.SUCCESS, (where, result.result_reason, result.result_message)
        elif want == DENIED:
            assert result.result_reason == ResultReason.PERMISSION_DENIED, (where, result.result_reason)
        else:
            assert result.result_reason == hidden_reason, (where, result.result_reason, result.result_message)
            assert uid in result.result_message and "policy" not in result.result_message  # as for a missing one


@pytest.mark.parametrize("version", [V14, V21], ids=["1.4", "2.1"])
@pytest.mark.parametrize("role", list(ROLES))
def test_locate_returns_only_what_the_policy_lets_an_identity_see(example, version, role) -> None:
    uid = _owned_key(example, version, active=False)
    name = [Attribute(name="Name", value=Name(value="matrix"))]
    from .test_engine_objects import locate

    found = locate(example, version, name, identity=ROLES[role]).unique_identifiers
    assert (uid in found) == (expected(role, "Locate") == ALLOWED), (role, found)


@pytest.mark.parametrize("role", list(ROLES))
def test_operations_naming_no_object_follow_the_policy(example, role) -> None:
    identity = ROLES[role]
    created = one(example, V21, create_aes(V21), identity)
    may_create = role != "auditor"  # apps (by grant), tenant and global administrators
    assert (created.result_status == ResultStatus.SUCCESS) == may_create, (role, created.result_message)
    # Open to everyone in [settings] anyone:
    ok(one(example, V21, item(Operation.QUERY, query_functions=()), identity))
    ok(one(example, V21, item(Operation.RNG_RETRIEVE, data_length=16), identity))


def test_creation_constraints_refuse_weak_or_extractable_keys(example) -> None:
    strict = {"constraints": [{"name": "AES-256 only", "algorithms": ["AES"], "min_length": {"AES": 256}}]}
    example.reload_policy(parse_policy(strict, "strict"))
    weak = one(example, V21, create_aes(V21, length=128), OWNER)
    assert weak.result_reason == ResultReason.PERMISSION_DENIED and "at least 256 bits" in weak.result_message
    ok(one(example, V21, create_aes(V21, length=256), OWNER))
    example.reload_policy(load_policy(EXAMPLE))
    root = [Attribute(name="Object Group", value="root-keys")]
    refused = one(example, V21, create_aes(V21, extra=root), OWNER)
    assert refused.result_reason == ResultReason.PERMISSION_DENIED and "Extractable false" in refused.result_message


def test_objects_are_created_in_the_creators_tenant_and_invisible_across(example) -> None:
    uid = ok(one(example, V21, create_aes(V21), ClientIdentity("eng-dan"))).unique_identifier
    with example.repository.read() as s:
        record = s.get(uid, attributes=False)
    assert (record.owner, record.tenant) == ("eng-dan", "eng")
    assert (
        one(example, V21, item(Operation.GET, unique_identifier=uid), OWNER).result_reason
        == ResultReason.OBJECT_NOT_FOUND
    )
    assert one(example, V21, item(Operation.GET, unique_identifier=uid), ClientIdentity("fin-admin")).result_reason == (
        ResultReason.OBJECT_NOT_FOUND
    )


def test_grants_by_object_group_name_pattern_and_custom_attribute(example) -> None:
    bob = ClientIdentity("fin-bob")
    shared = [Attribute(name="Object Group", value="shared")]
    uid = ok(one(example, V14, create_aes(V14, extra=shared), OWNER)).unique_identifier
    ok(one(example, V14, item(Operation.GET, unique_identifier=uid), bob))
    # A cryptographic operation reads only some attributes: the group must be among them.
    ok(one(example, V14, item(Operation.ACTIVATE, unique_identifier=uid), OWNER))
    ok(one(example, V14, OPERATIONS["Encrypt"](V14, uid), bob))
    assert (
        one(example, V14, item(Operation.DESTROY, unique_identifier=uid), bob).result_reason
        == ResultReason.PERMISSION_DENIED
    )
    billing = ok(one(example, V14, create_aes(V14, name="billing-2026"), OWNER)).unique_identifier
    other = ok(one(example, V14, create_aes(V14, name="payroll-2026"), OWNER)).unique_identifier
    fin_billing = ClientIdentity("fin-billing")
    ok(one(example, V14, item(Operation.GET_ATTRIBUTES, unique_identifier=billing), fin_billing))
    assert (
        one(example, V14, item(Operation.GET, unique_identifier=billing), fin_billing).result_reason
        == ResultReason.PERMISSION_DENIED
    )
    assert one(example, V14, item(Operation.GET_ATTRIBUTES, unique_identifier=other), fin_billing).result_reason == (
        ResultReason.ITEM_NOT_FOUND
    )
    tagged = ok(one(example, V14, create_aes(V14, extra=[Attribute(name="x-team", value="payments")]), OWNER))
    ok(one(example, V14, item(Operation.GET, unique_identifier=tagged.unique_identifier), bob))


def test_an_operation_policy_name_section_decides_for_its_objects(example) -> None:
    given = [Attribute(name="Operation Policy Name", value="read-only-shared")]
    uid = ok(one(example, V14, create_aes(V14, extra=given), OWNER)).unique_identifier
    ok(one(example, V14, item(Operation.GET, unique_identifier=uid), ClientIdentity("fin-bob")))
    # Not even the owner may destroy it: the section has owners_full_control = false.
    refused = one(example, V14, item(Operation.DESTROY, unique_identifier=uid), OWNER)
    assert refused.result_reason == ResultReason.PERMISSION_DENIED
