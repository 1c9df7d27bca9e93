"""Get: the object's value, unwrapped by custody, in the Key Format Type the client asks for
(converted by :mod:`.key_formats`), wrapped under another key if the client asks so (see
:mod:`.wrapping`)."""

from __future__ import annotations

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Struct
from kmip_client.protocol.model.base import EncodedItem
from kmip_client.protocol.model.payloads.lifecycle import GetRequest, GetResponse
from kmip_client.protocol.spec.enums import KeyFormatType, ObjectType, Operation, ResultReason
from kmip_client.protocol.ttlv import ItemType

from ..engine.context import RequestContext
from ..engine.registry import operation
from ..objects import lifecycle
from ..objects.attribute_set import stored
from ..storage.repository import Session
from .common import decoded_object, destroyed, load_object, wrap_context
from .key_formats import reformat
from .wrapping import check_key_wrap_type, encrypts, wrap_object

R = ResultReason
_SYMMETRIC_FORMATS = (KeyFormatType.RAW, KeyFormatType.TRANSPARENT_SYMMETRIC_KEY)


def _withheld(ctx: RequestContext, uid: str, attribute: str) -> KmipError:
    """Extractable False: the value never leaves the server. Sensitive True: only encrypted
    under another key (a Key Wrapping Specification that encrypts). KMIP 1.4 introduced both
    attributes and a Result Reason for each (Table 317: Sensitive 0x16, Not Extractable 0x17);
    an older client's key (registered over 2.x, say) gets Permission Denied, which 1.0-1.3 have."""
    if attribute == "Extractable":
        message, reason = f"object {uid!r} is not extractable (Extractable is False)", R.NOT_EXTRACTABLE
    else:
        message, reason = f"object {uid!r} is sensitive: its value is released only wrapped", R.SENSITIVE
    return KmipError(message, ctx.defined_reason(reason, R.PERMISSION_DENIED))


_NOT_FRESH = (stored("Fresh", 0, False, ItemType.BOOLEAN),)


def _served(ctx: RequestContext, uid: str) -> None:
    """The object is being served: it is Fresh no longer (KMIP 1.4 §3.34), which takes a write.
    In a read transaction the write is left to the one that ends the message (it writes the
    audit records anyway), before the answer goes out: the Get is not run again."""
    if ctx.session.writable:
        ctx.session.set_attributes(uid, "Fresh", _NOT_FRESH)
    else:
        ctx.deferred.append(lambda session: _clear_fresh(session, uid))


def _clear_fresh(session: Session, uid: str) -> None:
    if session.get(uid, attributes=False) is not None:  # not replaced by an Import meanwhile
        session.set_attributes(uid, "Fresh", _NOT_FRESH)


@operation(Operation.GET, writes=False)
def get(ctx: RequestContext, request: GetRequest) -> Struct:
    spec = request.key_wrapping_specification
    if request.key_wrap_type is not None:
        check_key_wrap_type(ctx, request.key_wrap_type, spec)
    if request.key_compression_type is not None:
        raise KmipError("key compression applies to elliptic-curve keys only", R.KEY_COMPRESSION_TYPE_NOT_SUPPORTED)
    # Only the row: the hot path reads one row and makes one custody call.
    obj = load_object(ctx, request.unique_identifier, for_release=True)
    record = obj.record
    if record.state in lifecycle.DESTROYED_STATES:
        raise destroyed(ctx, record.uid, "has been destroyed; its value is gone")
    if record.wrapped_value is None:
        # Registered for its attributes alone (Key Value Present is False).
        raise KmipError(
            f"object {record.uid!r} has no value on this server (it was registered without one)",
            ctx.defined_reason(R.KEY_VALUE_NOT_PRESENT, R.ILLEGAL_OPERATION),
        )
    if record.withheld_by is not None and not (record.withheld_by == "Sensitive" and encrypts(spec)):
        raise _withheld(ctx, record.uid, record.withheld_by)
    if record.fresh:
        _served(ctx, record.uid)
    plain = ctx.custody.unwrap(record.wrapped_value, wrap_context(record.uid, record.object_type))
    wanted = request.key_format_type
    managed: Struct | EncodedItem
    if spec is None and (wanted is None or wanted == record.value_format):
        # Stored as it is returned: sent without decoding and re-encoding.
        managed = EncodedItem(plain)
    else:
        managed = reformat(decoded_object(plain), wanted, record.uid)
        if spec is not None:
            managed = wrap_object(ctx, managed, spec, record.uid)
    ctx.id_placeholder = record.uid
    return GetResponse(
        object_type=ObjectType(record.object_type),
        unique_identifier=record.uid,
        # Readers always get a Struct; a writer takes the stored TTLV as it is (see EncodedItem).
        managed_object=managed,  # type: ignore[arg-type]
    )
