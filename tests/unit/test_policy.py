"""The access policy: the shipped file is the built-in default, and bad files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmip_server.policy import DEFAULT_POLICY, Policy, PolicyError, load_policy

SHIPPED = Path(__file__).resolve().parents[2] / "policies" / "default.toml"


def test_the_shipped_default_file_is_the_built_in_default() -> None:
    assert load_policy(SHIPPED) == DEFAULT_POLICY


def test_ownership_rules() -> None:
    policy = Policy(administrators=frozenset({"admin"}))
    assert policy.may_use("alice", "alice")
    assert not policy.may_use("bob", "alice")
    assert policy.may_use("admin", "alice")
    assert policy.visible_owners("alice") == ("alice",)
    assert policy.visible_owners("admin") is None
    assert policy.owner_for_new_object("alice") == "alice"
    assert policy.with_administrators(["ops"]).may_use("ops", "alice")


def test_without_creator_ownership_only_administrators_act() -> None:
    policy = Policy(administrators=frozenset({"admin"}), creator_owns=False)
    assert policy.owner_for_new_object("alice") == ""
    assert not policy.may_use("alice", "")
    assert policy.visible_owners("alice") == ()


@pytest.mark.parametrize(
    "text, message",
    [
        ("[ownership]\ncreator_owns = 'yes'\n", "creator_owns must be true or false"),
        ("[administrators]\nidentities = 'admin'\n", "must be a list of names"),
        ("[administrators]\nidentities = ['']\n", "must be a list of names"),
        ("[roles]\n", "unknown section(s) roles"),
        ("not toml ===", "cannot read policy file"),
    ],
)
def test_bad_policy_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_policy(path)
