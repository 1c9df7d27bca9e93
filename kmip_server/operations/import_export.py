"""Import and Export (KMIP 2.1 §6.1.25 and §6.1.18; 2.0 has both, 1.x neither): an object
moved between servers with all its attributes.

Export is Get (its checks: destroyed, no value, Sensitive and Extractable, Fresh; its Key
Format Type, Key Wrap Type, Key Compression Type and Key Wrapping Specification, which the
spec gives "the same semantics as for the Get operation") and every attribute of the object
beside the value. Get's own error list (2.1 Table 222) is Export's (Table 219), so a destroyed
object is refused as Get refuses it: its key material "SHALL not be returned".

Import is Register under the Unique Identifier the client gives, with Replace Existing
replacing the object of that identifier (its value and every attribute) in the same
transaction; without it an existing identifier is Object Already Exists. The spec says the
attributes' "Initially set by" and "When implicitly set" rules are not enforced: what the
client gives is kept, the server-set ones included (Initial Date, Last Change Date, State,
Digest, Fresh, Always Sensitive, the Revocation Reason and the dates of a revoked key ...), and
the server sets only what is missing. Four kinds of attribute are not simply taken:

* the object's identity (Unique Identifier, Object Type, Short Unique Identifier) must be the
  request's, and a Digest (SHA-256) and Key Format Type or Key Value Present must be what the
  object's value gives: a mismatch is Invalid Attribute Value, not a lie kept;
* a certificate's length and names are read from the certificate, as Register reads them;
* Lease Time and Protection Storage Mask are this server's facts, not the object's: the ones
  given are not kept (see :mod:`kmip_server.objects.server_attributes`);
* the owner is no attribute: a new object belongs to whom the policy says (as a registered
  one does), a replaced one keeps its owner, and only a caller who may use it replaces it.

A wrapped Key Block comes with its Key Wrap Type ("if and only if the key object is
wrapped", Table 238). Not Wrapped: it is unwrapped with this server's key as Register unwraps
(:mod:`.wrapping`) and gets a Wrapping Key Link. As Registered (stored as provided) is Feature
Not Supported: this server keeps every value unwrapped under custody, so a wrapped one could
not be used or exported as Get returns values.
"""

from __future__ import annotations

from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Attribute, Attributes, Struct
from kmip_client.protocol.model.attributes import Digest, Link
from kmip_client.protocol.model.payloads.lifecycle import (
    ExportRequest,
    ExportResponse,
    GetResponse,
    ImportRequest,
    ImportResponse,
)
from kmip_client.protocol.spec.enums import (
    HashingAlgorithm,
    KeyWrapType,
    LinkType,
    ObjectType,
    Operation,
    ResultReason,
    State,
)
from kmip_client.protocol.ttlv import ItemType

from ..engine.access import admit_object, authorize_operation
from ..engine.context import RequestContext
from ..engine.registry import operation
from ..objects import lifecycle
from ..objects.attribute_rules import CERTIFICATE_NAME_FIELDS
from ..objects.attribute_set import AttributeSet
from ..objects.server_attributes import short_unique_identifier
from ..storage.records import ObjectRecord
from .attribute_input import checked, put_initial
from .attributes import all_attributes
from .common import date_attribute, load_object, state_now
from .creation import digest, insert_object
from .registration import Prepared, checked_object, prepare_object
from .retrieval import get
from .wrapping import unwrap_object, wrapped_block

R = ResultReason
V2 = (2, 0)

#: Read from a certificate as Register reads them; the copies given are not kept.
_FROM_CERTIFICATE = frozenset(
    {
        "Certificate Length",
        "X.509 Certificate Identifier",
        "X.509 Certificate Subject",
        "X.509 Certificate Issuer",
        *(f"Certificate {part} {field}" for part in ("Subject", "Issuer") for field in CERTIFICATE_NAME_FIELDS),
    }
)
_THIS_SERVER = frozenset({"Lease Time", "Protection Storage Mask"})
#: Given, they must agree with the object; the server records them from the object.
_FROM_VALUE = ("Key Format Type", "Key Value Present")


def _mismatch(name: str, what: str) -> KmipError:
    return KmipError(f"the {name} attribute given is not {what}", R.INVALID_ATTRIBUTE_VALUE)


class _Given:
    """The attributes an Import gives, sorted: those the object keeps, its State, the checks."""

    def __init__(self, ctx: RequestContext, uid: str, object_type: int, given: tuple[Attribute, ...]) -> None:
        self.attrs = AttributeSet()
        self.state: int | None = None
        self.from_value: dict[str, Any] = {}
        identity = {
            "Unique Identifier": uid,
            "Object Type": object_type,
            "Short Unique Identifier": short_unique_identifier(uid),
        }
        for attr in given:
            name, rule = checked(ctx, attr)
            if name in identity:
                if attr.value != identity[name]:
                    raise _mismatch(name, "the request's")
            elif name == "State":
                self.state = _state(attr.value)
            elif name in _FROM_VALUE:
                self.from_value[name] = attr.value
            elif name not in _FROM_CERTIFICATE and name not in _THIS_SERVER:
                put_initial(ctx, self.attrs, name, rule, attr)

    def check_value(self, prepared: Prepared) -> None:
        """The value-derived attributes given against the object's value."""
        fmt = self.from_value.get("Key Format Type")
        if fmt is not None and prepared.key_format is not None and int(fmt) != prepared.key_format:
            raise _mismatch("Key Format Type", "the object's Key Block's")
        present = self.from_value.get("Key Value Present")
        if present is not None and bool(present) != prepared.has_value:
            raise _mismatch("Key Value Present", "whether the object has a Key Value")
        if prepared.digest_of is None:
            return
        ours = digest(prepared.digest_of, prepared.key_format)
        for _, attr in self.attrs.instances("Digest"):
            theirs = attr.value
            if (
                isinstance(theirs, Digest)
                and theirs.hashing_algorithm == HashingAlgorithm.SHA_256
                and theirs.key_format_type in (None, ours.key_format_type)
                and theirs.digest_value != ours.digest_value
            ):
                raise _mismatch("Digest", "the SHA-256 digest of the object's value")
        if "Digest" not in self.attrs:
            self.attrs.set("Digest", ours)


def _state(value: Any) -> int:
    try:
        return int(State(int(value)))
    except (TypeError, ValueError):
        raise KmipError(f"State {value!r} is not a KMIP State", R.INVALID_ATTRIBUTE_VALUE) from None


def _check_wrap_type(wrapped: bool, wrap_type: Any) -> None:
    """Table 238: a Key Wrap Type if and only if the key object is wrapped."""
    if not wrapped:
        if wrap_type is not None:
            raise KmipError("a Key Wrap Type is given for a wrapped key object only", R.INVALID_FIELD)
        return
    if wrap_type is None:
        raise KmipError("a wrapped key object is imported with a Key Wrap Type (Not Wrapped)", R.INVALID_FIELD)
    if wrap_type == KeyWrapType.AS_REGISTERED:
        raise KmipError(
            "Key Wrap Type As Registered is not supported: this server stores values unwrapped; "
            "import with Not Wrapped to have it unwrap the key",
            R.FEATURE_NOT_SUPPORTED,
        )
    if wrap_type != KeyWrapType.NOT_WRAPPED:
        raise KmipError(f"Key Wrap Type {wrap_type!r} is not a KMIP Key Wrap Type", R.INVALID_FIELD)


def _replaced(ctx: RequestContext, uid: str, replace: bool) -> ObjectRecord | None:
    """The existing object ``uid`` the import replaces (``replace``; without it an existing
    one refuses the import), admitted for Import by the access gate; None for a new one."""
    existing = ctx.session.get(uid, attributes=False, for_update=True)
    if existing is None:
        authorize_operation(ctx)  # a new object: Import as the policy grants it, like Register
        return None
    admit_object(ctx, existing)
    if not replace:
        raise KmipError(
            f"an object with Unique Identifier {uid!r} exists; Replace Existing True replaces it",
            R.OBJECT_ALREADY_EXISTS,
        )
    return existing


@operation(Operation.IMPORT, writes=True, min_version=V2)
def import_object(ctx: RequestContext, request: ImportRequest) -> Struct:
    uid = request.unique_identifier
    if not isinstance(uid, str) or not uid:
        raise KmipError("Import needs the Unique Identifier of the object it imports", R.INVALID_FIELD)
    if request.attributes is None:
        raise KmipError("Import needs the object's Attributes", R.INVALID_FIELD)
    object_type = request.object_type
    managed: Any = checked_object(ctx, object_type, request.managed_object, templates=False)
    assert object_type is not None
    given = _Given(ctx, uid, int(object_type), request.attributes.attributes)
    attrs = given.attrs
    wrapped = wrapped_block(getattr(managed, "key_block", None))
    _check_wrap_type(wrapped, request.key_wrap_type)
    replacing = _replaced(ctx, uid, bool(request.replace_existing))
    if wrapped:
        managed, wrapping_key = unwrap_object(ctx, managed)
        link = Link(link_type=LinkType.WRAPPING_KEY_LINK, linked_object_identifier=wrapping_key)
        if not attrs.has_value("Link", link):
            attrs.add("Link", link)
    prepared = prepare_object(ctx, managed, attrs)
    given.check_value(prepared)
    if given.state in lifecycle.DESTROYED_STATES and prepared.has_value:
        raise KmipError("a destroyed object has no value: import it without a Key Value", R.INVALID_ATTRIBUTE_VALUE)
    for name in ("Initial Date", "Last Change Date"):
        if name not in attrs:
            attrs.set_from(name, date_attribute(name, ctx.now))
    state = state_now(ctx, lifecycle.PRE_ACTIVE if given.state is None else given.state, attrs)
    if replacing is not None:
        # Replace Existing: the old value and attributes go in this
        # transaction, erased as Destroy erases them.
        ctx.session.delete(uid)
    insert_object(
        ctx,
        uid,
        int(object_type),
        attrs,
        prepared.stored if prepared.has_value else None,
        state=state,
        key_format=prepared.key_format,
        algorithm=prepared.algorithm,
        length=prepared.length,
        replacing=replacing,
    )
    return ImportResponse(unique_identifier=uid)


@operation(Operation.EXPORT, writes=False, min_version=V2)
def export_object(ctx: RequestContext, request: ExportRequest) -> Struct:
    got = get(ctx, request)
    assert isinstance(got, GetResponse) and got.unique_identifier is not None
    # Loaded after Get: a first Export of a Fresh object shows it no longer Fresh (in a read
    # transaction Get leaves that write to the end of the message: see retrieval._served).
    obj = load_object(ctx, got.unique_identifier)
    if obj.attributes is not None and obj.attributes.first("Fresh"):
        obj.attributes.set("Fresh", False, ItemType.BOOLEAN)
    return ExportResponse(
        object_type=ObjectType(obj.record.object_type),
        unique_identifier=obj.uid,
        attributes=Attributes(attributes=tuple(all_attributes(ctx, obj))),
        managed_object=got.managed_object,
    )
