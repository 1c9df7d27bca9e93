"""The KMIP Credential store: salted scrypt hashes in a 0600 file, checks that cost the same
for unknown users, a short memory of successful checks, and the policy's use of it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import ResultReason
from kmip_server.engine.identity import ClientIdentity
from kmip_server.policy import DEFAULT_POLICY, parse_policy
from kmip_server.policy.credentials import CredentialError, CredentialStore


def test_saved_file_holds_only_salted_hashes_readable_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    store = CredentialStore.load(path)  # no file yet: an empty store
    assert store.usernames() == []
    store.set("vcenter", "correct horse battery")
    store.set("netapp", "correct horse battery")
    store.save()
    assert path.stat().st_mode & 0o777 == 0o600
    assert not list(tmp_path.glob("*.tmp"))  # written to a temporary file, then renamed
    text = path.read_text()
    assert "correct horse" not in text
    users = json.loads(text)["users"]
    # Same password, different salts: the hashes differ.
    assert users["vcenter"]["salt"] != users["netapp"]["salt"] and users["vcenter"]["hash"] != users["netapp"]["hash"]
    assert len(bytes.fromhex(users["vcenter"]["salt"])) == 16
    again = CredentialStore.load(path)
    assert again.usernames() == ["netapp", "vcenter"]
    assert again.check("vcenter", "correct horse battery")
    assert not again.check("vcenter", "correct horse batter")
    assert not again.check("nobody", "correct horse battery")


def test_remove_and_replace_take_effect_at_once(tmp_path: Path) -> None:
    store = CredentialStore.load(tmp_path / "credentials.json")
    store.set("vcenter", "first")
    assert store.check("vcenter", "first")  # now remembered
    store.set("vcenter", "second")
    assert not store.check("vcenter", "first") and store.check("vcenter", "second")
    assert store.remove("vcenter") and not store.check("vcenter", "second")
    assert not store.remove("vcenter")


def test_a_successful_check_is_remembered_so_repeated_messages_skip_scrypt(tmp_path: Path) -> None:
    store = CredentialStore.load(tmp_path / "credentials.json")
    store.set("vcenter", "pw")
    started = time.perf_counter()
    assert store.check("vcenter", "pw")
    first = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(10):
        assert store.check("vcenter", "pw")
    remembered = (time.perf_counter() - started) / 10
    assert remembered < first / 5  # scrypt (n=2**14) costs tens of milliseconds; a dict lookup does not
    # Failures are not remembered: each wrong guess pays the full scrypt, known user or not.
    for user in ("vcenter", "nobody"):
        started = time.perf_counter()
        assert not store.check(user, "guess")
        assert time.perf_counter() - started > first / 5


@pytest.mark.parametrize("text", ["not json", '{"users": {"a": {"salt": "zz", "hash": "00"}}}', '{"people": {}}'])
def test_a_damaged_file_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "credentials.json"
    path.write_text(text)
    with pytest.raises(CredentialError, match="credentials"):
        CredentialStore.load(path)


def test_empty_usernames_and_passwords_are_refused(tmp_path: Path) -> None:
    store = CredentialStore.load(tmp_path / "credentials.json")
    for user, password in (("", "pw"), ("u", "")):
        with pytest.raises(CredentialError):
            store.set(user, password)


def test_the_policy_checks_a_given_credential_and_demands_a_required_one(tmp_path: Path) -> None:
    store = CredentialStore.load(tmp_path / "credentials.json")
    store.set("vcenter", "pw")
    alice = DEFAULT_POLICY.principal(ClientIdentity("alice"))
    assert DEFAULT_POLICY.authenticate(alice, None, None, store) is alice  # not required by default
    assert DEFAULT_POLICY.authenticate(alice, "vcenter", "pw", store).authenticated_user == "vcenter"
    # No store configured and none required: the credential PyKMIP and vCenter always send is
    # not a factor (docs/compatibility.md, header-credential).
    assert DEFAULT_POLICY.authenticate(alice, "vcenter", "anything", None) is alice
    for username, password, given in (("vcenter", "bad", store), ("nobody", "pw", store)):
        with pytest.raises(KmipError) as caught:
            DEFAULT_POLICY.authenticate(alice, username, password, given)
        assert caught.value.reason == ResultReason.AUTHENTICATION_NOT_SUCCESSFUL
        # The message does not tell a wrong username from a wrong password.
        assert "password" not in caught.value.message.lower() and "username" not in caught.value.message.lower()
    strict = parse_policy({"settings": {"require_credential": True}}, "inline")
    bob = strict.principal(ClientIdentity("bob"))
    with pytest.raises(KmipError) as caught:
        strict.authenticate(bob, None, None, store)
    assert caught.value.reason == ResultReason.AUTHENTICATION_NOT_SUCCESSFUL
    assert strict.authenticate(bob, "vcenter", "pw", store).authenticated_user == "vcenter"
    with pytest.raises(KmipError):
        strict.authenticate(bob, "vcenter", "pw", None)  # required, and nothing to check it against
