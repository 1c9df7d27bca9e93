"""Reading and validating policy files (the format: policies/README.md, policies/example.toml).

Every mistake is a :class:`PolicyError` naming the file and the entry: an unknown key or
section, an operation, object type, algorithm or usage the spec does not name, a role used
but not defined, an approval rule that cannot be met.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kmip_client.protocol.spec.enums import CryptographicAlgorithm, CryptographicUsageMask, ObjectType

from .facts import OPERATIONS, ApprovalRule
from .mapping import FIELDS
from .model import (
    ALL,
    Approval,
    Constraint,
    Grant,
    IdentityRule,
    OperationPolicy,
    Policy,
    Role,
    Scope,
    glob,
)

_KNOWN = {
    "settings": {
        "default_tenant",
        "default_roles",
        "hidden_objects",
        "owners_full_control",
        "require_credential",
        "anyone",
        "administrators",
    },
    "identities": {"match", "name_from", "tenant", "roles", "groups", "require_credential"},
    "role": {"administrator", "tenant_administrator", "approver", "description"},
    "grants": {"name", "roles", "groups", "identities", "operations", "scope"},
    "scope": {"object_group", "name", "object_type", "algorithm", "attributes", "owner"},
    "constraints": {
        "name",
        "roles",
        "tenants",
        "operations",
        "object_group",
        "algorithms",
        "min_length",
        "require_usage",
        "forbid_usage",
        "extractable",
    },
    "approvals": {"name", "operations", "scope", "required", "approvers", "expires_after"},
    "operation_policy": {"grants", "owners_full_control"},
}
_TOP = {"settings", "identities", "roles", "grants", "constraints", "approvals", "operation_policies"}


class PolicyError(ValueError):
    """A policy file that cannot be used."""


def _enum_name(member: Any) -> str:
    return str(member.name).replace("_", " ").title()


def _by_name(enum: Any) -> dict[str, int]:
    names: dict[str, int] = {}
    for member in enum:
        names[member.name.replace("_", " ").lower()] = int(member)
        names[member.name.lower()] = int(member)
    return names


_TYPES, _ALGORITHMS, _USAGES = _by_name(ObjectType), _by_name(CryptographicAlgorithm), _by_name(CryptographicUsageMask)
_ALGORITHM_NAMES = {int(m): m.name.replace("_", "-") for m in CryptographicAlgorithm}


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> PolicyError:
        return PolicyError(f"{self.source}: {where}: {message}")

    def table(self, value: Any, where: str, known: set[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, "must be a table")
        unknown = set(value) - known
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        return value

    def strings(self, value: Any, where: str) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(where, "must be a list of non-empty strings")
        return list(value)

    def flag(self, value: Any, where: str, default: bool | None) -> bool | None:
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(where, "must be true or false")
        return value

    def operations(self, value: Any, where: str) -> frozenset[str]:
        names = self.strings(value, where)
        for name in names:
            if name != ALL and name not in OPERATIONS:
                raise self.fail(
                    where, f"{name!r} is not a KMIP operation (spelled as the spec does: 'Get Attributes', 'Re-key')"
                )
        return frozenset(names)

    def enum(self, value: Any, where: str, names: Mapping[str, int], kind: str) -> int:
        if not isinstance(value, str) or value.lower() not in names:
            raise self.fail(where, f"{value!r} is not a {kind}")
        return names[value.lower()]

    def usage(self, value: Any, where: str) -> int:
        return sum({self.enum(v, where, _USAGES, "Cryptographic Usage Mask bit") for v in self.strings(value, where)})

    def scope(self, value: Any, where: str) -> Scope:
        if value is None:
            return Scope()
        data = self.table(value, where, _KNOWN["scope"])
        owner = data.get("owner")
        if owner not in (None, "self"):
            raise self.fail(f"{where}.owner", 'the only owner scope is "self"')
        attributes = data.get("attributes", {})
        if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
            raise self.fail(f"{where}.attributes", "must be a table of attribute name = text value")
        group = data.get("object_group")
        if group is not None and not isinstance(group, str):
            raise self.fail(f"{where}.object_group", "must be a string")
        name = data.get("name")
        if name is not None and not isinstance(name, str):
            raise self.fail(f"{where}.name", "must be a glob pattern string")
        return Scope(
            object_group=group,
            name=glob(name) if name is not None else None,
            object_type=self.enum(data["object_type"], f"{where}.object_type", _TYPES, "KMIP Object Type")
            if "object_type" in data
            else None,
            algorithm=self.enum(data["algorithm"], f"{where}.algorithm", _ALGORITHMS, "Cryptographic Algorithm")
            if "algorithm" in data
            else None,
            attributes=tuple(sorted(attributes.items())),
            owner_self=owner == "self",
        )

    def grant(self, value: Any, where: str) -> Grant:
        data = self.table(value, where, _KNOWN["grants"])
        grant = Grant(
            name=str(data.get("name") or where),
            roles=frozenset(self.strings(data.get("roles"), f"{where}.roles")),
            groups=frozenset(self.strings(data.get("groups"), f"{where}.groups")),
            identities=frozenset(self.strings(data.get("identities"), f"{where}.identities")),
            operations=self.operations(data.get("operations"), f"{where}.operations"),
            scope=self.scope(data.get("scope"), f"{where}.scope"),
        )
        if not grant.operations:
            raise self.fail(where, "a grant needs operations")
        if not (grant.roles or grant.groups or grant.identities):
            raise self.fail(where, "a grant needs roles, groups or identities")
        return grant


def parse_policy(data: Mapping[str, Any], source: str) -> Policy:
    r = _Reader(source)
    unknown = set(data) - _TOP
    if unknown:
        raise r.fail("top level", f"unknown section(s) {', '.join(sorted(unknown))}")
    settings = r.table(data.get("settings", {}), "settings", _KNOWN["settings"])
    hidden = settings.get("hidden_objects", "not-found")
    if hidden not in ("not-found", "permission-denied"):
        raise r.fail("settings.hidden_objects", 'must be "not-found" or "permission-denied"')
    roles: dict[str, Role] = {}
    raw_roles = data.get("roles", {})
    if not isinstance(raw_roles, dict):
        raise r.fail("roles", "must be a table of [roles.NAME] sections")
    for name, value in raw_roles.items():
        role = r.table(value, f"roles.{name}", _KNOWN["role"])
        roles[name] = Role(
            name,
            bool(r.flag(role.get("administrator"), f"roles.{name}.administrator", False)),
            bool(r.flag(role.get("tenant_administrator"), f"roles.{name}.tenant_administrator", False)),
            bool(r.flag(role.get("approver"), f"roles.{name}.approver", False)),
        )

    def known_roles(names: Iterable[str], where: str) -> frozenset[str]:
        missing = [n for n in names if n not in roles]
        if missing:
            raise r.fail(where, f"role(s) {', '.join(missing)} not defined in [roles]")
        return frozenset(names)

    identities = []
    for i, value in enumerate(_list(r, data.get("identities", []), "identities")):
        where = f"identities[{i + 1}]"
        rule = r.table(value, where, _KNOWN["identities"])
        match = r.table(rule.get("match", {}), f"{where}.match", set(FIELDS))
        if not match or not all(isinstance(v, str) for v in match.values()):
            raise r.fail(f"{where}.match", f"needs one or more of {', '.join(FIELDS)} = glob pattern")
        name_from = rule.get("name_from")
        if name_from is not None and name_from not in FIELDS:
            raise r.fail(f"{where}.name_from", f"must be one of {', '.join(FIELDS)}")
        identities.append(
            IdentityRule(
                index=i,
                match=tuple((key, glob(pattern)) for key, pattern in sorted(match.items())),
                name_field=name_from,
                tenant=rule.get("tenant"),
                roles=known_roles(r.strings(rule.get("roles"), f"{where}.roles"), f"{where}.roles"),
                groups=frozenset(r.strings(rule.get("groups"), f"{where}.groups")),
                require_credential=r.flag(rule.get("require_credential"), f"{where}.require_credential", None),
            )
        )
    grants = tuple(r.grant(v, f"grants[{i + 1}]") for i, v in enumerate(_list(r, data.get("grants", []), "grants")))
    for grant in grants:
        known_roles(grant.roles, f"grant {grant.name!r}")
    constraints = tuple(
        _constraint(r, v, f"constraints[{i + 1}]", known_roles)
        for i, v in enumerate(_list(r, data.get("constraints", []), "constraints"))
    )
    approvals = tuple(
        _approval(r, v, f"approvals[{i + 1}]") for i, v in enumerate(_list(r, data.get("approvals", []), "approvals"))
    )
    sections = {}
    raw_sections = data.get("operation_policies", {})
    if not isinstance(raw_sections, dict):
        raise r.fail("operation_policies", "must be a table of [operation_policies.NAME] sections")
    for name, value in raw_sections.items():
        where = f"operation_policies.{name}"
        section = r.table(value, where, _KNOWN["operation_policy"])
        section_grants = tuple(
            r.grant(g, f"{where}.grants[{i + 1}]") for i, g in enumerate(_list(r, section.get("grants", []), where))
        )
        for grant in section_grants:
            known_roles(grant.roles, f"{where} grant {grant.name!r}")
        sections[name] = OperationPolicy(section_grants, bool(r.flag(section.get("owners_full_control"), where, True)))
    anyone = settings.get("anyone", [ALL])
    return Policy(
        source=source,
        default_tenant=str(settings.get("default_tenant", "default")),
        default_roles=known_roles(
            r.strings(settings.get("default_roles"), "settings.default_roles"), "settings.default_roles"
        ),
        hidden_as_missing=hidden == "not-found",
        owners_full_control=bool(r.flag(settings.get("owners_full_control"), "settings.owners_full_control", True)),
        require_credential=bool(r.flag(settings.get("require_credential"), "settings.require_credential", False)),
        anyone=r.operations(anyone, "settings.anyone"),
        administrators=frozenset(r.strings(settings.get("administrators", ["admin"]), "settings.administrators")),
        identities=tuple(identities),
        roles=roles,
        grants=grants,
        constraints=constraints,
        approvals=approvals,
        operation_policies=sections,
    )


def _list(r: _Reader, value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise r.fail(where, "must be an array of tables ([[...]])")
    return value


def _constraint(r: _Reader, value: Any, where: str, known_roles: Any) -> Constraint:
    data = r.table(value, where, _KNOWN["constraints"])
    algorithms = data.get("algorithms")
    lengths = r.table(
        data.get("min_length", {}), f"{where}.min_length", set(_ALGORITHMS) | {k.upper() for k in _ALGORITHMS}
    )
    min_length = {}
    for name, bits in lengths.items():
        if not isinstance(bits, int) or bits <= 0:
            raise r.fail(f"{where}.min_length.{name}", "must be a positive number of bits")
        min_length[r.enum(name, f"{where}.min_length", _ALGORITHMS, "Cryptographic Algorithm")] = bits
    return Constraint(
        name=str(data.get("name") or where),
        roles=known_roles(r.strings(data.get("roles"), f"{where}.roles"), f"{where}.roles"),
        tenants=frozenset(r.strings(data.get("tenants"), f"{where}.tenants")),
        operations=r.operations(data.get("operations"), f"{where}.operations"),
        object_group=data.get("object_group"),
        algorithms=None
        if algorithms is None
        else frozenset(
            r.enum(a, f"{where}.algorithms", _ALGORITHMS, "Cryptographic Algorithm")
            for a in r.strings(algorithms, where)
        ),
        min_length=min_length,
        require_usage=r.usage(data.get("require_usage"), f"{where}.require_usage"),
        forbid_usage=r.usage(data.get("forbid_usage"), f"{where}.forbid_usage"),
        extractable=r.flag(data.get("extractable"), f"{where}.extractable", None),
        algorithm_names=_ALGORITHM_NAMES,
    )


def _approval(r: _Reader, value: Any, where: str) -> Approval:
    data = r.table(value, where, _KNOWN["approvals"])
    approvers = frozenset(r.strings(data.get("approvers"), f"{where}.approvers"))
    required = data.get("required")
    if not isinstance(required, int) or not 1 <= required <= len(approvers):
        raise r.fail(where, f"required must be from 1 to the number of approvers ({len(approvers)})")
    expires = data.get("expires_after", 86400)
    if not isinstance(expires, int) or expires <= 0:
        raise r.fail(f"{where}.expires_after", "must be a positive number of seconds")
    operations = r.operations(data.get("operations"), f"{where}.operations")
    if not operations:
        raise r.fail(where, "an approval rule needs operations")
    name = str(data.get("name") or where)
    return Approval(
        ApprovalRule(name, required, approvers, expires), operations, r.scope(data.get("scope"), f"{where}.scope")
    )


def load_policy(path: Path) -> Policy:
    """Read one policy file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from None
    return parse_policy(data, str(path))


def load_policies(directory: Path) -> Policy:
    """Every ``*.toml`` in ``directory``, in name order, as one policy: tables merge, arrays
    of tables ([[grants]] ...) concatenate, a later file's settings win."""
    merged: dict[str, Any] = {}
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise PolicyError(f"{directory}: no *.toml policy files")
    for path in files:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"{path}: {exc}") from None
        for key, value in data.items():
            if isinstance(value, list):
                merged.setdefault(key, []).extend(value)
            elif isinstance(value, dict):
                merged.setdefault(key, {}).update(value)
    return parse_policy(merged, f"{directory}/*.toml")
