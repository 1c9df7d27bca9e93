"""The access policy on its own: loading and validating files, mapping certificates to
principals, decisions, explain, and the credential store."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, ObjectType, ResultReason
from kmip_server.engine.identity import ClientIdentity
from kmip_server.policy import (
    DEFAULT_POLICY,
    NewObjectFacts,
    ObjectFacts,
    PolicyError,
    load_policies,
    load_policy,
    parse_policy,
)
from kmip_server.policy.credentials import CredentialStore

POLICIES = Path(__file__).resolve().parents[2] / "policies"
AES = int(CryptographicAlgorithm.AES)


def facts(owner="alice", tenant="default", **extra) -> ObjectFacts:
    values = {"uid": "u1", "owner": owner, "tenant": tenant, "object_type": int(ObjectType.SYMMETRIC_KEY), "algorithm": AES, "length": 256}
    values.update(extra)
    return ObjectFacts(**values)


def who(policy, name: str, der: bytes | None = None):
    return policy.principal(ClientIdentity(name, der))


def test_the_shipped_default_file_decides_as_the_built_in_default() -> None:
    shipped = load_policy(POLICIES / "default.toml")
    for policy in (shipped, DEFAULT_POLICY):
        alice, bob, admin = who(policy, "alice"), who(policy, "bob"), who(policy, "admin")
        assert policy.decide(alice, "Destroy", facts()).allowed
        refused = policy.decide(bob, "Get", facts())
        assert not refused.allowed and refused.hidden
        assert policy.decide(admin, "Destroy", facts()).rule == "administrator"
        assert policy.decide(bob, "Create", None).allowed  # naming no object: open
        assert policy.locate_filter(bob).owners == ("bob",) and policy.locate_filter(admin).tenants is None
        assert policy.owner_for_new_object(alice) == "alice" and policy.tenant_for_new_object(alice) == "default"
        assert not policy.attribute_names and policy.hidden_as_missing
    assert DEFAULT_POLICY.with_administrators(["ops"]).decide(who(DEFAULT_POLICY, "ops"), "Get", facts()).allowed


def _certificate(cn: str, ou: str | None = None, sans: list[x509.GeneralName] | None = None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if ou:
        names.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    subject = x509.Name(names)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


def test_identities_map_certificate_fields_to_tenants_and_roles() -> None:
    policy = load_policy(POLICIES / "example.toml")
    officer = who(policy, "carol", _certificate("carol", ou="Security"))
    assert officer.roles == {"security-officer"} and policy.is_admin(officer)
    spiffe = _certificate("svc", sans=[x509.UniformResourceIdentifier("spiffe://example.org/finance/payroll")])
    workload = who(policy, "svc", spiffe)
    assert (workload.name, workload.tenant, workload.roles) == ("spiffe://example.org/finance/payroll", "finance", {"app"})
    array = who(policy, "filer1", _certificate("filer1", sans=[x509.DNSName("filer1.storage.example.com")]))
    assert array.tenant == "eng"
    with pytest.raises(KmipError) as caught:
        policy.authenticate(array, None, None, None)  # this rule requires the KMIP Credential
    assert caught.value.reason == ResultReason.AUTHENTICATION_NOT_SUCCESSFUL
    nobody = who(policy, "stranger")
    assert (nobody.tenant, nobody.roles) == ("default", frozenset())
    assert not policy.decide(nobody, "Create", None).allowed


def test_decisions_name_the_rule_and_explain_says_why() -> None:
    policy = load_policy(POLICIES / "example.toml")
    auditor, bob = who(policy, "fin-audit"), who(policy, "fin-bob")
    obj = facts(owner="fin-alice", tenant="finance")
    assert policy.decide(auditor, "Get Attributes", obj).rule == "grant 'auditors read metadata'"
    denied = policy.decide(auditor, "Get", obj)
    assert not denied.allowed and not denied.hidden  # it may know the object exists
    assert policy.decide(bob, "Get", obj).hidden
    assert policy.decide(who(policy, "fin-admin"), "Destroy", obj).rule == "tenant administrator"
    assert policy.decide(who(policy, "eng-x"), "Get", facts(owner="eng-x", tenant="finance")).rule == "another tenant's object"
    lines = policy.explain(auditor, "Get", obj)
    assert "identities rule #4" in lines[1] and lines[-1] == "DENY Get by default deny"
    root = facts(owner="fin-alice", tenant="finance", object_group=("root-keys",))
    approval = policy.decide(who(policy, "fin-alice"), "Destroy", root).approval
    assert approval is not None and approval.required == 2 and "approver-dave" in approval.approvers
    assert "needs 2 approval(s)" in policy.explain(who(policy, "fin-alice"), "Destroy", root)[-1]


def test_constraints_refuse_what_may_not_be_created() -> None:
    policy = load_policy(POLICIES / "example.toml")
    alice = who(policy, "fin-alice")

    def new(**values) -> NewObjectFacts:
        base = {"object_type": 2, "algorithm": AES, "length": 256, "usage_mask": 12, "extractable": None, "sensitive": None}
        base.update(values)
        return NewObjectFacts(**base)

    assert policy.admit(alice, "Create", new()).allowed
    assert "not allowed" in policy.admit(alice, "Create", new(algorithm=int(CryptographicAlgorithm.DES))).rule
    assert "at least 2048" in policy.admit(alice, "Create", new(algorithm=int(CryptographicAlgorithm.RSA), length=1024)).rule
    root = {"object_group": ("root-keys",), "usage_mask": 0x20 | 0x10}  # Wrap and Unwrap Key
    assert "Extractable false" in policy.admit(alice, "Create", new(**root)).rule
    assert policy.admit(alice, "Create", new(extractable=False, **root)).allowed
    assert "lacks required" in policy.admit(alice, "Create", new(extractable=False, object_group=("root-keys",))).rule


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[settings]\nhidden = "x"\n', "unknown key(s) hidden"),
        ('[[grants]]\nroles = ["app"]\noperations = ["Get"]\n', "role(s) app not defined"),
        ('[roles.app]\n[[grants]]\nroles = ["app"]\noperations = ["Fetch"]\n', "'Fetch' is not a KMIP operation"),
        ('[roles.app]\n[[grants]]\nroles = ["app"]\noperations = ["Get"]\nscope = { algorithm = "ROT13" }\n', "not a Cryptographic Algorithm"),
        ('[[approvals]]\noperations = ["Destroy"]\nrequired = 3\napprovers = ["a", "b"]\n', "required must be from 1 to"),
        ("[nonsense]\n", "unknown section(s) nonsense"),
        ("[settings\n", "not valid TOML"),
    ],
)
def test_bad_files_are_refused_naming_the_file_and_the_entry(tmp_path: Path, text: str, complaint: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert str(path) in str(caught.value) and complaint in str(caught.value)


def test_a_directory_of_files_is_one_policy(tmp_path: Path) -> None:
    (tmp_path / "10-roles.toml").write_text("[roles.app]\n")
    (tmp_path / "20-grants.toml").write_text('[[grants]]\nname = "g"\nroles = ["app"]\noperations = ["Get"]\n')
    policy = load_policies(tmp_path)
    assert [g.name for g in policy.grants] == ["g"] and "app" in policy.roles


def test_operation_policy_name_sections_replace_the_general_grants() -> None:
    policy = parse_policy(
        {
            "roles": {"app": {}},
            "identities": [{"match": {"CN": "*"}, "roles": ["app"]}],
            "operation_policies": {"locked": {"owners_full_control": False, "grants": []}},
        },
        "inline",
    )
    alice = who(policy, "alice")
    assert policy.decide(alice, "Destroy", facts()).allowed
    assert not policy.decide(alice, "Destroy", facts(operation_policy_name="locked")).allowed
    assert policy.decide(alice, "Destroy", facts(operation_policy_name="unknown-name")).allowed  # falls back


def test_the_credential_store_keeps_only_salted_hashes(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    store = CredentialStore.load(path)
    store.set("vcenter", "correct horse")
    store.save()
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    assert "correct horse" not in path.read_text() and len(bytes.fromhex(data["users"]["vcenter"]["salt"])) == 16
    again = CredentialStore.load(path)
    assert again.check("vcenter", "correct horse") and again.check("vcenter", "correct horse")
    assert not again.check("vcenter", "wrong") and not again.check("nobody", "correct horse")
    assert again.remove("vcenter") and not again.check("vcenter", "correct horse")
    policy = DEFAULT_POLICY
    with pytest.raises(KmipError):
        policy.authenticate(who(policy, "x"), "vcenter", "correct horse", again)
    store.set("x", "pw")
    assert policy.authenticate(who(policy, "x"), "x", "pw", store).authenticated_user == "x"
