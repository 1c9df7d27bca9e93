"""What the engine tells the policy and what the policy answers: plain frozen values, so the
engine (engine/access.py) and the policy (policy/model.py) meet only here."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from kmip_client.protocol.spec.enums import Operation

# The spec's spelling where title-casing the enum name does not give it.
_SPELLING = {
    Operation.RE_KEY: "Re-key",
    Operation.RE_KEY_KEY_PAIR: "Re-key Key Pair",
    Operation.RE_CERTIFY: "Re-certify",
    Operation.MAC: "MAC",
    Operation.MAC_VERIFY: "MAC Verify",
    Operation.RNG_RETRIEVE: "RNG Retrieve",
    Operation.RNG_SEED: "RNG Seed",
    Operation.PKCS_11: "PKCS#11",
}


def operation_name(operation: int) -> str:
    """An operation as the spec names it ("Get Attribute List", "Re-key"): how the engine
    tells the policy, the audit trail and approvals which operation an item is."""
    name = _NAMES.get(operation)
    return name if name is not None else f"0x{operation:08X}"


# Spelled once: every batch item asks.
_NAMES: dict[int, str] = {int(op): _SPELLING.get(op) or op.name.replace("_", " ").title() for op in Operation}
#: Every operation's name, as policy files may write it.
OPERATIONS = frozenset(_NAMES.values())


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """The identity a request acts as, after the policy mapped its certificate.

    ``name`` is what objects' owners, audit records and approvals say; ``fields`` holds every
    certificate field the mapping may match ("CN", "OU", "O", "subject", "dns", "email",
    "uri", "spiffe"; values are tuples because a certificate may hold several)."""

    name: str
    tenant: str = "default"
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    fields: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict, compare=False)
    authenticated_user: str | None = None  # the KMIP Credential username, once checked


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectFacts:
    """What a grant's scope may look at on an existing object."""

    uid: str
    owner: str
    tenant: str
    object_type: int | None
    algorithm: int | None
    length: int | None
    names: tuple[str, ...] = ()
    object_group: tuple[str, ...] = ()
    custom: Mapping[str, str] = dataclasses.field(default_factory=dict)
    operation_policy_name: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class NewObjectFacts:
    """What the creation constraints look at on an object about to be stored."""

    object_type: int | None
    algorithm: int | None
    length: int | None
    usage_mask: int | None
    extractable: bool | None  # the Extractable attribute (None: not given, the default True)
    sensitive: bool | None
    names: tuple[str, ...] = ()
    object_group: tuple[str, ...] = ()
    operation_policy_name: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ApprovalRule:
    """M of N: ``required`` distinct approvers among ``approvers`` must agree."""

    name: str
    required: int
    approvers: frozenset[str]
    expires_after: int = 86400


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer: allowed or not, the rule that decided (for explain and for the
    refusal's message), whether a refused identity may not learn the object exists, and the
    approval an allowed operation still needs."""

    allowed: bool
    rule: str
    hidden: bool = False
    approval: ApprovalRule | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LocateFilter:
    """How Locate narrows its SQL for a principal: ``tenants`` and ``owners`` (None: any);
    ``check_each`` when a grant depends on more than those, so each candidate is decided."""

    tenants: tuple[str, ...] | None
    owners: tuple[str, ...] | None
    check_each: bool = False
