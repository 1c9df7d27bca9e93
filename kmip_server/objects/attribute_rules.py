"""Who may set, change and delete which attribute: the spec's attribute tables as data.

KMIP defines, per attribute, whether it is single- or multi-instance, whether a client may
set it when creating an object, and whether a client may later add, modify or delete it
(KMIP 1.4 §3, 2.1 §4). The engine consults this table instead of spreading those rules over
the handlers. Custom attributes ("x-"/"y-" names, and 2.x vendor attributes) are free-form:
multi-instance and fully client-managed.
"""

from __future__ import annotations

import dataclasses

from kmip_client.protocol.spec.attributes import ATTRIBUTE_TAGS
from kmip_client.protocol.ttlv import ItemType

#: The name fields of the 2.x Certificate Subject/Issuer attributes ("Certificate Subject CN" ...).
CERTIFICATE_NAME_FIELDS = (
    "CN",
    "O",
    "OU",
    "Email",
    "C",
    "ST",
    "L",
    "UID",
    "Serial Number",
    "Title",
    "DC",
    "DN Qualifier",
)


@dataclasses.dataclass(frozen=True, slots=True)
class AttributeRule:
    multi: bool = False  # may have several instances
    on_create: bool = True  # a client may supply it in Create / Register
    client_add: bool = True  # Add Attribute / Set Attribute by a client
    client_modify: bool = True  # Modify Attribute by a client
    client_delete: bool = True  # Delete Attribute by a client


_SERVER_ONLY = AttributeRule(on_create=False, client_add=False, client_modify=False, client_delete=False)
_SERVER_ONLY_MULTI = dataclasses.replace(_SERVER_ONLY, multi=True)
# Fixed at creation: a client chooses it then, and never changes it afterwards.
_CREATE_ONLY = AttributeRule(client_add=False, client_modify=False, client_delete=False)
_SINGLE = AttributeRule()
_MULTI = AttributeRule(multi=True)
# A client may set it, but once set it stays (dates the lifecycle relies on).
_SET_ONCE = AttributeRule(client_delete=False)
# A client may give it (in Register, or later with Add Attribute) but never change it.
_GIVEN_ONCE = AttributeRule(client_modify=False, client_delete=False)

RULES: dict[str, AttributeRule] = {
    "Unique Identifier": _SERVER_ONLY,
    "Object Type": _SERVER_ONLY,
    "State": _SERVER_ONLY,
    "Initial Date": _SERVER_ONLY,
    "Last Change Date": _SERVER_ONLY,
    # For an object the server generates the server sets it (Create overrides a client's).
    "Original Creation Date": _GIVEN_ONCE,
    "Digest": _SERVER_ONLY_MULTI,
    "Lease Time": _SERVER_ONLY,
    "Destroy Date": _SERVER_ONLY,
    "Compromise Date": _SERVER_ONLY,
    "Compromise Occurrence Date": _SERVER_ONLY,
    "Revocation Reason": _SERVER_ONLY,
    "Archive Date": _SERVER_ONLY,
    # A client may register an object as not fresh; only Get changes it afterwards.
    "Fresh": dataclasses.replace(_SERVER_ONLY, on_create=True),
    "Always Sensitive": _SERVER_ONLY,
    "Never Extractable": _SERVER_ONLY,
    "Key Value Present": _SERVER_ONLY,
    "Key Format Type": _SERVER_ONLY,
    "Short Unique Identifier": _SERVER_ONLY,
    "Protection Storage Mask": _SERVER_ONLY,
    "Cryptographic Algorithm": _CREATE_ONLY,
    "Cryptographic Length": _CREATE_ONLY,
    "Cryptographic Domain Parameters": _CREATE_ONLY,
    "Cryptographic Usage Mask": _CREATE_ONLY,
    "Certificate Type": _CREATE_ONLY,
    "Certificate Length": _SERVER_ONLY,
    # Read from a registered X.509 certificate (KMIP 1.4 §3.9-3.15, 2.x §4.9, §4.10).
    **dict.fromkeys(
        (
            "X.509 Certificate Identifier",
            "X.509 Certificate Subject",
            "X.509 Certificate Issuer",
            "Certificate Identifier",
            "Certificate Subject",
            "Certificate Issuer",
        ),
        _SERVER_ONLY,
    ),
    **{
        f"Certificate {part} {field}": _SERVER_ONLY_MULTI
        for part in ("Subject", "Issuer")
        for field in CERTIFICATE_NAME_FIELDS
    },
    # Create checks a client's against the token's generator.
    "Random Number Generator": _GIVEN_ONCE,
    "Usage Limits": _SINGLE,
    "Name": _MULTI,
    "Alternative Name": _MULTI,
    "Object Group": _MULTI,
    "Link": _MULTI,
    "Application Specific Information": _MULTI,
    "Cryptographic Parameters": _MULTI,
    "Key Value Location": _MULTI,
    "Operation Policy Name": _SINGLE,
    "Contact Information": _SINGLE,
    "Description": _SINGLE,
    "Comment": _SINGLE,
    "PKCS#12 Friendly Name": _SINGLE,
    # Always present (False / True unless a client said otherwise): changed, never deleted.
    "Sensitive": _SET_ONCE,
    "Extractable": _SET_ONCE,
    "Protection Level": _SINGLE,
    "Protection Period": _SINGLE,
    "Quantum Safe": _SINGLE,
    "NIST Key Type": _SINGLE,
    "Activation Date": _SET_ONCE,
    "Process Start Date": _SET_ONCE,
    "Protect Stop Date": _SET_ONCE,
    "Deactivation Date": _SET_ONCE,
    # KMIP 2.1 §4.48-4.54 (2.1 only: see server_attributes.defined_in). A client may give the
    # schedule when it creates an object, or set it later once, but not change or delete it.
    "Rotate Automatic": _GIVEN_ONCE,
    "Rotate Interval": _GIVEN_ONCE,
    "Rotate Offset": _GIVEN_ONCE,
    # A client's label for the set of keys one rotation chain makes: changed and deleted freely.
    "Rotate Name": _SINGLE,
    # Set by the server when an object is replaced (kmip_server/rotation/lineage.py).
    "Rotate Date": _SERVER_ONLY,
    "Rotate Generation": _SERVER_ONLY,
    "Rotate Latest": _SERVER_ONLY,
}

#: The attributes KMIP 2.1 added for key rotation.
ROTATION_ATTRIBUTES = frozenset(name for name in RULES if name.startswith("Rotate "))

_CUSTOM = _MULTI


def is_custom(name: str) -> bool:
    """A client- or vendor-defined attribute (KMIP 1.x "x-"/"y-" names; 2.x vendor ones)."""
    return name.startswith(("x-", "y-")) or (name not in ATTRIBUTE_TAGS and "-" in name)


def rule_for(name: str) -> AttributeRule | None:
    """The rule of ``name``; None when it is neither a known attribute nor a custom one."""
    rule = RULES.get(name)
    if rule is not None:
        return rule
    if is_custom(name):
        return _CUSTOM
    if name in ATTRIBUTE_TAGS:
        # A spec attribute we give no special meaning to: one client-managed value.
        return _SINGLE
    return None


#: Attributes the server derives from the object's row rather than storing as attributes.
SYNTHESISED = ("Unique Identifier", "Short Unique Identifier", "Object Type", "State", "Key Format Type")


_DATE, _ENUM, _INT, _TEXT = ItemType.DATE_TIME, ItemType.ENUMERATION, ItemType.INTEGER, ItemType.TEXT_STRING
_BOOL, _STRUCT, _INTERVAL = ItemType.BOOLEAN, ItemType.STRUCTURE, ItemType.INTERVAL

#: The item type a client must use for the value of each attribute we interpret.
VALUE_TYPES: dict[str, ItemType] = {
    **dict.fromkeys(
        (
            "Initial Date",
            "Last Change Date",
            "Original Creation Date",
            "Activation Date",
            "Process Start Date",
            "Protect Stop Date",
            "Deactivation Date",
            "Destroy Date",
            "Compromise Date",
            "Compromise Occurrence Date",
            "Archive Date",
            "Rotate Date",
        ),
        _DATE,
    ),
    **dict.fromkeys(("Cryptographic Algorithm", "Object Type", "State", "Key Format Type"), _ENUM),
    **dict.fromkeys(("Cryptographic Length", "Cryptographic Usage Mask", "Rotate Generation"), _INT),
    **dict.fromkeys(
        ("Object Group", "Contact Information", "Operation Policy Name", "Description", "Comment", "Unique Identifier"),
        _TEXT,
    ),
    **dict.fromkeys(
        ("Sensitive", "Extractable", "Fresh", "Always Sensitive", "Never Extractable", "Rotate Automatic", "Rotate Latest"),
        _BOOL,
    ),
    **dict.fromkeys(
        ("Name", "Link", "Cryptographic Parameters", "Application Specific Information", "Usage Limits", "Digest"),
        _STRUCT,
    ),
    **dict.fromkeys(("Lease Time", "Rotate Interval", "Rotate Offset"), _INTERVAL),
    "Rotate Name": _STRUCT,
    "Random Number Generator": _STRUCT,
    "Protection Storage Mask": _INT,
    "Short Unique Identifier": ItemType.BYTE_STRING,
}
