"""What the operation handlers share: loading an object the caller may use, saving changes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Attribute
from kmip_client.protocol.model.attributes import Link
from kmip_client.protocol.model.base import decode_struct
from kmip_client.protocol.model.objects import MANAGED_OBJECTS
from kmip_client.protocol.model.reader import Decline, read_struct
from kmip_client.protocol.spec.enums import LinkType, ResultReason
from kmip_client.protocol.ttlv import decode

from ..engine.access import admit_object, not_found
from ..engine.context import RequestContext
from ..objects import lifecycle
from ..objects.attribute_set import AttributeSet
from ..objects.server_attributes import fill_defaults, record_history
from ..storage.records import ObjectRecord


def as_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# Server-set dates (Initial Date, Last Change Date): the same attribute for every object
# touched in one second (attributes are immutable), instead of a new one per object.
_dates: dict[tuple[str, int], Attribute] = {}


def date_attribute(name: str, seconds: int) -> Attribute:
    attr = _dates.get((name, seconds))
    if attr is None:
        if len(_dates) >= 16:
            _dates.clear()
        attr = _dates[(name, seconds)] = Attribute(name=name, value=as_datetime(seconds))
    return attr


def as_seconds(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(value)


def invalid_attribute_value(ctx: RequestContext, message: str) -> KmipError:
    """An attribute value this server does not take: Invalid Attribute Value (2.x), Invalid Field (1.x)."""
    return KmipError(message, ctx.reason(ResultReason.INVALID_ATTRIBUTE_VALUE, ResultReason.INVALID_FIELD))


def linked(attrs: AttributeSet, link_type: LinkType) -> str | None:
    """The object the (first) Link of ``link_type`` names, or None."""
    for _, attr in attrs.instances("Link"):
        link = attr.value
        if isinstance(link, Link) and link.link_type == link_type and link.linked_object_identifier:
            return str(link.linked_object_identifier)
    return None


def decoded_object(plain: bytes) -> Any:
    """The stored TTLV of a managed object, decoded by the generated reader of its class (a
    third of the two-step decoder's cost) where it takes the shape."""
    cls = MANAGED_OBJECTS.get(int.from_bytes(plain[:3], "big"))
    if cls is not None:
        try:
            return read_struct(cls, plain)
        except Decline:
            pass  # a shape the reader leaves to the two-step decoder, which also names any fault
    item = decode(plain)
    return decode_struct(MANAGED_OBJECTS[item.tag], item)


def wrap_context(uid: str, object_type: int) -> bytes:
    """The authenticated context of an object's wrapped value."""
    return f"strongroom/v1/{uid}/{int(object_type)}".encode()


class ManagedObject:
    """A stored object loaded for one request: its row, its attributes and its state now."""

    __slots__ = ("record", "attributes", "state", "_stored_state", "_loaded")

    def __init__(
        self, record: ObjectRecord, attributes: AttributeSet | None, state: int, loaded: tuple[str, ...] | None = None
    ) -> None:
        self.record = record
        self.attributes = attributes if attributes is not None else AttributeSet()
        self.state = state
        self._stored_state = record.state
        # The attribute names loaded, when not all were (load_object(names=...)).
        self._loaded = loaded

    @property
    def uid(self) -> str:
        return self.record.uid

    @property
    def destroyed(self) -> bool:
        return self.state in lifecycle.DESTROYED_STATES

    def touch(self, ctx: RequestContext) -> None:
        """Record a change: Last Change Date moves to now."""
        self.attributes.set_from("Last Change Date", date_attribute("Last Change Date", ctx.now))

    def save(self, ctx: RequestContext, **columns: Any) -> None:
        """Write the changed attributes, and the state when it changed (by time or operation)."""
        session = ctx.session
        record_history(self.attributes)
        for name in self.attributes.changed():
            if self._loaded is not None and name not in self._loaded and name != "Last Change Date":
                # Writing replaces every instance of the name: those not loaded would be lost.
                raise RuntimeError(f"attribute {name!r} of {self.uid!r} was not loaded, so it cannot be saved")
            session.set_attributes(self.uid, name, self.attributes.rows(name))
        if self.state != self._stored_state:
            columns["state"] = self.state
            self._stored_state = self.state
        if columns:
            session.update(self.uid, **columns)


def load_object(
    ctx: RequestContext,
    given_uid: Any,
    *,
    attributes: bool = True,
    for_update: bool = False,
    for_release: bool = False,
    names: tuple[str, ...] | None = None,
) -> ManagedObject:
    """The object ``given_uid`` names (or the ID Placeholder), admitted for the item's operation
    by the engine's access gate (:func:`kmip_server.engine.access.admit_object`).

    Object Not Found (1.x: Item Not Found) when there is no such object, or the policy hides it
    from the caller; Permission Denied when the caller may see it but not do this. With ``attributes=False`` only the row is read (the Get path),
    so time-based state changes are then not applied: callers that care about state load the
    attributes. ``for_release`` (implies ``attributes=False``) also reads whether Sensitive or
    Extractable withholds the value (``record.withheld_by``) and whether the object is Fresh.
    Loaded attributes include those an object has without a stored row (see
    :mod:`kmip_server.objects.server_attributes`). ``names`` loads only the attributes named
    (the dates that decide the state among them), in a second SELECT rather than the full set.
    """
    uid = ctx.uid(given_uid)
    # The attributes the access policy reads come in the same statement as the object (all
    # of them, or joined to the value read, or among the names), so the gate reads no more.
    policy_names = ctx.policy.attribute_names
    if for_release:
        attributes = False
        record = ctx.session.get_for_release(uid, policy_names)
        read = True
    elif names is not None and not for_update:
        if policy_names:
            names = tuple(sorted({*names, *policy_names}))
        record = ctx.session.get_for_use(uid, tuple(names))
        read = True
    else:
        record = ctx.session.get(uid, attributes=attributes, for_update=for_update)
        read = attributes
    if record is None:
        raise not_found(ctx, uid)
    admit_object(ctx, record, record.attributes if read else None)
    if not attributes:
        return ManagedObject(record, None, record.state)
    attrs = AttributeSet(record.attributes)
    fill_defaults(attrs)
    loaded = names if names is not None and not for_update else None
    return ManagedObject(record, attrs, state_now(ctx, record.state, attrs), loaded)


def state_now(ctx: RequestContext, stored: int, attrs: AttributeSet) -> int:
    """The state an object with these attributes is in at the request's time (dates applied)."""
    return lifecycle.effective_state(
        stored, as_seconds(attrs.first("Activation Date")), as_seconds(attrs.first("Deactivation Date")), ctx.now
    )


def wrong_state_reason(ctx: RequestContext) -> ResultReason:
    """Wrong Key Lifecycle State for a 2.1 client. 1.x has no such reason, and the OASIS test
    cases of 1.x and 2.0 expect Permission Denied for every object used or changed outside its
    state (Destroy of an Active key in SKLC-M-2-14 and AKLC-M-2-20, Encrypt with a Deactivated
    key in CS-BC-M-14-20, Sign in CS-AC-M-8-20); the 2.1 files expect the new reason."""
    return ResultReason.WRONG_KEY_LIFECYCLE_STATE if ctx.version >= (2, 1) else ResultReason.PERMISSION_DENIED


def wrong_state(ctx: RequestContext, obj: ManagedObject, action: str) -> KmipError:
    return KmipError(
        f"cannot {action} object {obj.uid!r}: it is {lifecycle.state_name(obj.state)}", wrong_state_reason(ctx)
    )


def destroyed(ctx: RequestContext, uid: str, what: str = "is destroyed") -> KmipError:
    """The error for using a destroyed object (2.x Object Destroyed; 1.x has only Item Not Found)."""
    return KmipError(f"object {uid!r} {what}", ctx.reason(ResultReason.OBJECT_DESTROYED, ResultReason.ITEM_NOT_FOUND))
