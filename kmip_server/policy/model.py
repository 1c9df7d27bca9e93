"""The access policy, compiled from its files (loader.py), and its decisions.

How a decision is made, for a principal P, an operation OP and an object O (or none):

1. A global administrator may do everything.
2. An operation naming no object (Create, Register, Locate, Query ...) is allowed when
   ``[settings] anyone`` lists it (the default: every such operation), P is a tenant
   administrator, or a grant to P lists it.
3. An object in another tenant is hidden: refused as if it did not exist.
4. A tenant administrator may do everything to the objects of their tenant.
5. When O's Operation Policy Name names an ``[operation_policies.NAME]`` section, its grants
   (and its ``owners_full_control``) decide instead of the general ones.
6. O's owner may do everything to it (``owners_full_control``, true by default).
7. A grant to P (by role, group or identity name) that lists OP and whose scope O matches.
8. Otherwise deny; the object is hidden unless some grant to P matches it for another
   operation (P may know it exists, say by Get Attributes, but not do OP).

An allowed operation may still need M-of-N approval: the first ``[[approvals]]`` rule that
lists OP and whose scope matches O. Creation constraints (``[[constraints]]``) are checked by
:meth:`Policy.admit` on every object about to be stored.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import ResultReason

from .facts import ApprovalRule, Decision, LocateFilter, NewObjectFacts, ObjectFacts, Principal
from .mapping import certificate_fields

if TYPE_CHECKING:
    from ..engine.identity import ClientIdentity
    from .credentials import CredentialStore

ALL = "*"


@dataclasses.dataclass(frozen=True, slots=True)
class Scope:
    """Which objects a grant or approval covers; every field given must match."""

    object_group: str | None = None
    name: re.Pattern[str] | None = None  # compiled from a glob
    object_type: int | None = None
    algorithm: int | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    owner_self: bool = False

    @property
    def attribute_names(self) -> frozenset[str]:
        """The stored attributes that matching this scope reads."""
        names = {key for key, _ in self.attributes}
        if self.object_group is not None:
            names.add("Object Group")
        if self.name is not None:
            names.add("Name")
        return frozenset(names)

    @property
    def only_owner(self) -> bool:
        return self.owner_self and not (self.attribute_names or self.object_type or self.algorithm)

    def matches(self, facts: ObjectFacts, principal: Principal) -> bool:
        if self.owner_self and facts.owner != principal.name:
            return False
        if self.object_type is not None and facts.object_type != self.object_type:
            return False
        if self.algorithm is not None and facts.algorithm != self.algorithm:
            return False
        if self.object_group is not None and self.object_group not in facts.object_group:
            return False
        if self.name is not None and not any(self.name.fullmatch(n) for n in facts.names):
            return False
        return all(facts.custom.get(key) == value for key, value in self.attributes)

    @property
    def empty(self) -> bool:
        return self == _ANY


_ANY = Scope()


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    name: str
    roles: frozenset[str]
    groups: frozenset[str]
    identities: frozenset[str]
    operations: frozenset[str]
    scope: Scope
    # Built once: decide() runs per batch item and returns this instead of a new Decision.
    decision: Decision = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decision", Decision(True, f"grant {self.name!r}"))

    def applies_to(self, p: Principal) -> bool:
        # isdisjoint, not &: no set is built per call.
        return not self.roles.isdisjoint(p.roles) or not self.groups.isdisjoint(p.groups) or p.name in self.identities

    def allows(self, operation: str) -> bool:
        return ALL in self.operations or operation in self.operations


@dataclasses.dataclass(frozen=True, slots=True)
class Constraint:
    name: str
    roles: frozenset[str]
    tenants: frozenset[str]
    operations: frozenset[str]
    object_group: str | None
    algorithms: frozenset[int] | None
    min_length: Mapping[int, int]
    require_usage: int
    forbid_usage: int
    extractable: bool | None
    algorithm_names: Mapping[int, str]

    def applies(self, p: Principal, operation: str, new: NewObjectFacts) -> bool:
        if self.roles and self.roles.isdisjoint(p.roles):
            return False
        if self.tenants and p.tenant not in self.tenants:
            return False
        if self.operations and operation not in self.operations:
            return False
        return self.object_group is None or self.object_group in new.object_group

    def violation(self, new: NewObjectFacts) -> str | None:
        name = self.algorithm_names.get(new.algorithm or -1, str(new.algorithm))
        if self.algorithms is not None and new.algorithm is not None and new.algorithm not in self.algorithms:
            return f"algorithm {name} is not allowed"
        least = self.min_length.get(new.algorithm or -1)
        if least is not None and (new.length or 0) < least:
            return f"{name} keys must be at least {least} bits, not {new.length}"
        mask = new.usage_mask or 0
        if self.require_usage and mask & self.require_usage != self.require_usage:
            return "the Cryptographic Usage Mask lacks required usages"
        if mask & self.forbid_usage:
            return "the Cryptographic Usage Mask has a forbidden usage"
        if self.extractable is False and new.extractable is not False:
            return "the object must be created with Extractable false"
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class Approval:
    rule: ApprovalRule
    operations: frozenset[str]
    scope: Scope


@dataclasses.dataclass(frozen=True, slots=True)
class IdentityRule:
    index: int
    match: tuple[tuple[str, re.Pattern[str]], ...]
    name_field: str | None
    tenant: str | None
    roles: frozenset[str]
    groups: frozenset[str]
    require_credential: bool | None

    def matches(self, fields: Mapping[str, tuple[str, ...]]) -> bool:
        return all(any(pattern.fullmatch(v) for v in fields.get(key, ())) for key, pattern in self.match)


@dataclasses.dataclass(frozen=True, slots=True)
class Role:
    name: str
    administrator: bool = False
    tenant_administrator: bool = False
    approver: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class OperationPolicy:
    grants: tuple[Grant, ...]
    owners_full_control: bool


@dataclasses.dataclass(frozen=True, eq=False)
class Policy:
    """An immutable, compiled access policy (see the module docstring for the rules)."""

    source: str = "(built in)"
    default_tenant: str = "default"
    default_roles: frozenset[str] = frozenset()
    hidden_as_missing: bool = True
    owners_full_control: bool = True
    require_credential: bool = False
    anyone: frozenset[str] = frozenset({ALL})
    administrators: frozenset[str] = frozenset({"admin"})
    identities: tuple[IdentityRule, ...] = ()
    roles: Mapping[str, Role] = dataclasses.field(default_factory=dict)
    grants: tuple[Grant, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    approvals: tuple[Approval, ...] = ()
    operation_policies: Mapping[str, OperationPolicy] = dataclasses.field(default_factory=dict)
    _principals: dict[tuple[str, bytes | None], Principal] = dataclasses.field(default_factory=dict, repr=False)
    # Derived once in __post_init__ (again by with_administrators, through replace): what the
    # per-item calls would otherwise recompute from the rules every time.
    _derived: _Derived = dataclasses.field(init=False, repr=False)
    _rules: dict[int, tuple[Mapping[str, tuple[str, ...]], IdentityRule | None]] = dataclasses.field(
        init=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        scopes = [g.scope for g in self._all_grants()] + [a.scope for a in self.approvals]
        flagged = {flag: frozenset(n for n, r in self.roles.items() if getattr(r, flag)) for flag in _FLAGS}
        read: set[str] = {"Operation Policy Name"} if self.operation_policies else set()
        for scope in scopes:
            read |= scope.attribute_names
        derived = _Derived(
            attribute_names=tuple(sorted(read)),
            administrator=flagged["administrator"],
            tenant_administrator=flagged["tenant_administrator"],
            approver=flagged["approver"],
            credentials_asked=self.require_credential or any(r.require_credential for r in self.identities),
            grants=_by_operation(self.grants),
            sections={name: _by_operation(s.grants) for name, s in self.operation_policies.items()},
        )
        object.__setattr__(self, "_derived", derived)

    # ------------------------------------------------------------------ who

    @property
    def attribute_names(self) -> tuple[str, ...]:
        """The stored attributes the rules read (the engine loads only these, by name)."""
        return self._derived.attribute_names

    def _all_grants(self) -> Iterable[Grant]:
        yield from self.grants
        for section in self.operation_policies.values():
            yield from section.grants

    def principal(self, identity: ClientIdentity) -> Principal:
        """The principal a client identity acts as: the first ``[[identities]]`` rule its
        certificate's fields match gives its tenant, roles and groups."""
        key = (identity.name, identity.certificate)
        known = self._principals.get(key)
        if known is not None:
            return known
        fields = dict(certificate_fields(identity.certificate)) if identity.certificate else {}
        fields.setdefault("CN", (identity.name,))
        fields["name"] = (identity.name,)
        principal = self._map(identity.name, fields)
        if len(self._principals) > 4096:
            self._principals.clear()
        self._principals[key] = principal
        return principal

    def _map(self, name: str, fields: Mapping[str, tuple[str, ...]]) -> Principal:
        rule = self.matching_rule(fields)
        if rule is None:
            return Principal(name, self.default_tenant, self.default_roles, frozenset(), fields)
        if rule.name_field is not None and fields.get(rule.name_field):
            name = fields[rule.name_field][0]
        return Principal(name, rule.tenant or self.default_tenant, rule.roles, rule.groups, fields)

    def matching_rule(self, fields: Mapping[str, tuple[str, ...]]) -> IdentityRule | None:
        # authenticate() asks this for every message; principal() hands out one fields
        # mapping per certificate, so remember the answer by that object (kept alive by the
        # entry, so its id cannot be reused while remembered).
        known = self._rules.get(id(fields))
        if known is not None and known[0] is fields:
            return known[1]
        rule = next((rule for rule in self.identities if rule.matches(fields)), None)
        if len(self._rules) > 4096:
            self._rules.clear()
        self._rules[id(fields)] = (fields, rule)
        return rule

    def authenticate(
        self, principal: Principal, username: str | None, password: str | None, store: CredentialStore | None
    ) -> Principal:
        """Check the KMIP Credential (Username and Password), when given or required."""
        if username is None and not self._derived.credentials_asked:
            return principal  # every message of a client without a credential: no rule walk
        rule = self.matching_rule(principal.fields)
        required = (
            self.require_credential if rule is None or rule.require_credential is None else rule.require_credential
        )
        if username is None:
            if required:
                raise KmipError(
                    f"{principal.name!r} must send a Username and Password credential",
                    ResultReason.AUTHENTICATION_NOT_SUCCESSFUL,
                )
            return principal
        if store is None and not required:
            # No credential store configured: the credential is not a factor here, and the
            # clients that always send one (PyKMIP, vCenter) are served on their certificate
            # alone (docs/compatibility.md, header-credential).
            return principal
        if store is None or password is None or not store.check(username, password):
            raise KmipError("the credential was not accepted", ResultReason.AUTHENTICATION_NOT_SUCCESSFUL)
        return dataclasses.replace(principal, authenticated_user=username)

    def is_admin(self, p: Principal) -> bool:
        return p.name in self.administrators or not self._derived.administrator.isdisjoint(p.roles)

    def is_tenant_admin(self, p: Principal) -> bool:
        return not self._derived.tenant_administrator.isdisjoint(p.roles)

    def is_approver(self, p: Principal) -> bool:
        return not self._derived.approver.isdisjoint(p.roles)

    # ------------------------------------------------------------------ what

    def decide(self, p: Principal, operation: str, facts: ObjectFacts | None) -> Decision:
        decision = self._access(p, operation, facts)
        if decision.allowed and self.approvals:
            for approval in self.approvals:
                if ALL in approval.operations or operation in approval.operations:
                    if facts is None and not approval.scope.empty:
                        continue
                    if facts is not None and not approval.scope.matches(facts, p):
                        continue
                    return _with_approval(decision, approval.rule)
        return decision

    def _access(self, p: Principal, operation: str, facts: ObjectFacts | None) -> Decision:
        if self.is_admin(p):
            return _ADMIN
        if facts is None:
            if ALL in self.anyone or operation in self.anyone:
                return _ANYONE
            if self.is_tenant_admin(p):
                return _TENANT_ADMIN  # in their tenant: what they create is the tenant's
            listed = self._derived.grants.get(operation) or self._derived.grants.get(ALL, ())
            grant = next((g for g in listed if g.applies_to(p)), None)
            return grant.decision if grant else _DENY
        if facts.tenant != p.tenant:
            return _OTHER_TENANT
        if self.is_tenant_admin(p):
            return _TENANT_ADMIN
        grants, owners, index = self.grants, self.owners_full_control, self._derived.grants
        if facts.operation_policy_name is not None:
            section = self.operation_policies.get(facts.operation_policy_name)
            if section is not None:
                grants, owners = section.grants, section.owners_full_control
                index = self._derived.sections[facts.operation_policy_name]
        if owners and facts.owner == p.name:
            return _OWNER
        for grant in index.get(operation) or index.get(ALL, ()):
            if grant.applies_to(p) and grant.scope.matches(facts, p):
                return grant.decision
        # Refused: hidden unless a grant to P covers the object for some other operation.
        seen = any(grant.applies_to(p) and grant.scope.matches(facts, p) for grant in grants)
        return _DENY if seen else _HIDDEN

    def admit(self, p: Principal, operation: str, new: NewObjectFacts) -> Decision:
        """Whether the creation constraints let ``p`` store the object ``new`` describes."""
        for constraint in self.constraints:
            if constraint.applies(p, operation, new):
                problem = constraint.violation(new)
                if problem is not None:
                    return Decision(False, f"constraint {constraint.name!r}: {problem}")
        return Decision(True, "no constraint refused it")

    def owner_for_new_object(self, p: Principal) -> str:
        return p.name

    def tenant_for_new_object(self, p: Principal) -> str:
        return p.tenant

    def locate_filter(self, p: Principal) -> LocateFilter:
        if self.is_admin(p):
            return _EVERYTHING
        if self.is_tenant_admin(p):
            return LocateFilter((p.tenant,), None)
        if self.operation_policies:
            # An object's Operation Policy Name may put it under other grants: decide each.
            return LocateFilter((p.tenant,), None, check_each=True)
        located = [g for g in self.grants if g.applies_to(p) and g.allows("Locate")]
        if any(g.scope.empty for g in located):
            return LocateFilter((p.tenant,), None)  # every object of the tenant
        if all(g.scope.only_owner for g in located):
            return LocateFilter((p.tenant,), (p.name,) if self.owners_full_control or located else ())
        return LocateFilter((p.tenant,), None, check_each=True)

    def with_administrators(self, names: Iterable[str]) -> Policy:
        return dataclasses.replace(self, administrators=self.administrators | frozenset(names), _principals={})

    # ------------------------------------------------------------------ explain

    def explain(self, p: Principal, operation: str, facts: ObjectFacts | None) -> list[str]:
        """Why :meth:`decide` answers as it does, for a person; changes nothing."""
        rule = self.matching_rule(p.fields)
        lines = [
            f"policy: {self.source}",
            f"identity {p.name!r}: "
            + (f"identities rule #{rule.index + 1}" if rule is not None else "no identities rule matched (defaults)"),
            f"  tenant {p.tenant!r}, roles {sorted(p.roles) or '-'}, groups {sorted(p.groups) or '-'}",
        ]
        if facts is not None:
            lines.append(
                f"object {facts.uid!r}: owner {facts.owner!r}, tenant {facts.tenant!r}, names {list(facts.names) or '-'}, "
                f"groups {list(facts.object_group) or '-'}"
            )
        lines += self._considered(p, operation, facts)
        decision = self.decide(p, operation, facts)
        verdict = "ALLOW" if decision.allowed else "DENY"
        lines.append(f"{verdict} {operation} by {decision.rule}")
        if not decision.allowed and decision.hidden:
            lines.append(
                "  (the object is hidden: answered as not found)"
                if self.hidden_as_missing
                else "  (answered Permission Denied)"
            )
        if decision.approval is not None:
            a = decision.approval
            lines.append(f"  needs {a.required} approval(s) from {', '.join(sorted(a.approvers))} (rule {a.name!r})")
        return lines


    def _considered(self, p: Principal, operation: str, facts: ObjectFacts | None) -> list[str]:
        """One line per grant in play: for P or not, listing the operation or not, and whether
        the object is in its scope (what a person checks when a decision surprises them)."""
        grants: tuple[Grant, ...] = self.grants
        lines = []
        if facts is not None and facts.operation_policy_name is not None:
            section = self.operation_policies.get(facts.operation_policy_name)
            if section is None:
                lines.append(f"  Operation Policy Name {facts.operation_policy_name!r}: no such section, general grants apply")
            else:
                grants = section.grants
                lines.append(
                    f"  Operation Policy Name {facts.operation_policy_name!r}: its grants apply"
                    f" (owners_full_control = {str(section.owners_full_control).lower()})"
                )
        for grant in grants:
            if not grant.applies_to(p):
                lines.append(f"  grant {grant.name!r}: not for this principal")
                continue
            lists = "lists" if grant.allows(operation) else "does not list"
            if facts is None:
                lines.append(f"  grant {grant.name!r}: for this principal, {lists} {operation}")
            else:
                scope = "the object is in its scope" if grant.scope.matches(facts, p) else "the object is not in its scope"
                lines.append(f"  grant {grant.name!r}: for this principal, {lists} {operation}, {scope}")
        return lines


_ADMIN = Decision(True, "administrator")
_ANYONE = Decision(True, "settings.anyone")
_TENANT_ADMIN = Decision(True, "tenant administrator")
_OWNER = Decision(True, "owner")
_DENY = Decision(False, "default deny")
_HIDDEN = Decision(False, "default deny", hidden=True)
_OTHER_TENANT = Decision(False, "another tenant's object", hidden=True)
_EVERYTHING = LocateFilter(None, None)
_FLAGS = ("administrator", "tenant_administrator", "approver")


@dataclasses.dataclass(frozen=True, slots=True)
class _Derived:
    attribute_names: tuple[str, ...]
    administrator: frozenset[str]  # the names of the roles with that flag
    tenant_administrator: frozenset[str]
    approver: frozenset[str]
    credentials_asked: bool  # some rule or the settings require a KMIP Credential
    grants: Mapping[str, tuple[Grant, ...]]  # operation -> the grants listing it, in file order
    sections: Mapping[str, Mapping[str, tuple[Grant, ...]]]  # the same per operation policy


def _by_operation(grants: tuple[Grant, ...]) -> dict[str, tuple[Grant, ...]]:
    """Grants indexed by operation, file order kept; ALL holds those listing "*" (for an
    operation no grant names)."""
    named = {op for g in grants for op in g.operations if op != ALL}
    index = {op: tuple(g for g in grants if g.allows(op)) for op in named}
    index[ALL] = tuple(g for g in grants if ALL in g.operations)
    return index


@functools.lru_cache(maxsize=1024)
def _with_approval(decision: Decision, rule: ApprovalRule) -> Decision:
    """The allowed decision that still needs ``rule``'s approval (cached: values, not state)."""
    return dataclasses.replace(decision, approval=rule)


def glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.DOTALL)
