"""Create (and what Register shares with it): new managed objects, their value wrapped by custody before it is stored.

The value stored (wrapped) is the TTLV of the whole managed object as it will be returned by
Get (a Symmetric Key with its Key Block, a Secret Data, an Opaque Object), so whatever format
and type a client registered comes back exactly. The wrap's authenticated context binds the
blob to the object's Unique Identifier: a blob copied onto another row does not unwrap.
"""

from __future__ import annotations

import hashlib
import os
import time
from enum import IntEnum
from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Attribute, Struct
from kmip_client.protocol.model.attributes import Digest, ProtectionStorageMasks
from kmip_client.protocol.model.base import to_bytes
from kmip_client.protocol.model.objects import (
    KeyBlock,
    KeyValue,
    SecretData,
    SymmetricKey,
    TransparentKeyMaterial,
)
from kmip_client.protocol.model.payloads.lifecycle import (
    CreateRequest,
    CreateResponse,
)
from kmip_client.protocol.spec.enums import (
    CryptographicAlgorithm,
    CryptographicUsageMask,
    HashingAlgorithm,
    KeyFormatType,
    ObjectType,
    Operation,
    ResultReason,
    SecretDataType,
)
from kmip_client.protocol.ttlv import ItemType

from ..engine.access import admit_new_object
from ..engine.context import RequestContext
from ..engine.quirks import IGNORED_CREATE_ATTRIBUTES, warn_once
from ..engine.registry import operation
from ..objects import lifecycle
from ..objects.attribute_set import AttributeSet
from ..objects.server_attributes import PROTECTION_STORAGE, random_number_generator
from ..policy.facts import NewObjectFacts
from ..storage.records import ObjectRecord
from .attribute_input import apply_initial
from .common import date_attribute, invalid_attribute_value, state_now, wrap_context
from .legacy_algorithms import LEGACY
from .legacy_algorithms import check_key as legacy_check
from .templates import requested_attributes

R = ResultReason
A = CryptographicAlgorithm
HMAC_ALGORITHMS = frozenset({A.HMAC_SHA1, A.HMAC_SHA224, A.HMAC_SHA256, A.HMAC_SHA384, A.HMAC_SHA512})
AES_LENGTHS = (128, 192, 256)
#: Triple DES: two-key (112 bits of key) and three-key (168), stored with their parity bits.
DES3_BYTES = {112: 16, 168: 24}
_DES3_BITS = {size: bits for bits, size in DES3_BYTES.items()}
HMAC_LENGTH_RANGE = (64, 4096)  # bits; HMAC keys of any byte length, within reason

_DEFAULT_MASKS = {
    A.AES: CryptographicUsageMask.ENCRYPT | CryptographicUsageMask.DECRYPT,
    A.DES3: CryptographicUsageMask.ENCRYPT | CryptographicUsageMask.DECRYPT,
    **dict.fromkeys(HMAC_ALGORITHMS, CryptographicUsageMask.MAC_GENERATE | CryptographicUsageMask.MAC_VERIFY),
}


def new_unique_identifier() -> str:
    """A time-ordered UUID (the RFC 9562 version 7 layout: 48-bit Unix milliseconds, then 74
    random bits). New objects then land at the end of the primary-key and attribute indexes
    instead of on random pages, which cuts the pages each durable commit writes."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 9562 variant
    digits = f"{value:032x}"  # what str(uuid.UUID(int=value)) gives, without building the object
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _symmetric_parameters(ctx: RequestContext, attrs: AttributeSet, key_bytes: int | None) -> tuple[int, int]:
    algorithm = attrs.first("Cryptographic Algorithm")
    length = attrs.first("Cryptographic Length")
    if algorithm is None:
        raise KmipError(
            "a symmetric key needs a Cryptographic Algorithm (AES or HMAC-SHA*)",
            ctx.reason(R.MISSING_DATA, R.INVALID_FIELD) if key_bytes is None else R.INVALID_FIELD,
        )
    if length is None:
        if key_bytes is None:
            raise KmipError("a symmetric key needs a Cryptographic Length", ctx.reason(R.MISSING_DATA, R.INVALID_FIELD))
        length = _DES3_BITS.get(key_bytes, key_bytes * 8) if algorithm == A.DES3 else key_bytes * 8
        attrs.set("Cryptographic Length", length, ItemType.INTEGER)
    if algorithm == A.AES:
        if length not in AES_LENGTHS:
            raise invalid_attribute_value(ctx, f"AES keys are 128, 192 or 256 bits long, not {length}")
    elif algorithm in HMAC_ALGORITHMS:
        if length % 8 or not HMAC_LENGTH_RANGE[0] <= length <= HMAC_LENGTH_RANGE[1]:
            raise invalid_attribute_value(
                ctx, f"HMAC key length must be a multiple of 8 from 64 to 4096 bits, not {length}"
            )
    elif algorithm == A.DES3:
        if length not in DES3_BYTES:
            raise invalid_attribute_value(ctx, f"Triple DES keys are 112 or 168 bits long, not {length}")
    elif algorithm in LEGACY:
        legacy_check(ctx, int(algorithm), int(length))
    elif key_bytes is None:
        raise KmipError(
            f"Create makes AES, Triple DES and HMAC keys; {getattr(algorithm, 'name', algorithm)} is not supported",
            ctx.reason(R.INVALID_ATTRIBUTE_VALUE, R.INVALID_FIELD),
        )
    if key_bytes is not None and key_bytes != key_size(algorithm, length):
        raise invalid_attribute_value(ctx, f"a {key_bytes}-byte key does not have a Cryptographic Length of {length}")
    if attrs.first("Quantum Safe") is True and not quantum_safe(algorithm, length):
        # The client requires the key to stay safe against a quantum computer for its
        # Protection Period; this one would not, and no server can make it so.
        raise KmipError(
            f"a {length}-bit {getattr(algorithm, 'name', algorithm)} key is not quantum safe: "
            f"Grover's search halves its strength; symmetric keys need {QUANTUM_SAFE_BITS} bits or more",
            R.GENERAL_FAILURE,
        )
    if "Cryptographic Usage Mask" not in attrs and algorithm in _DEFAULT_MASKS:
        attrs.set("Cryptographic Usage Mask", _DEFAULT_MASKS[algorithm], ItemType.INTEGER)
    return int(algorithm), int(length)


#: Key bits a symmetric key needs to be quantum safe: a quantum search (Grover) halves a key's
#: strength, and 128 bits of strength is the floor (CNSA 2.0 asks for AES-256).
QUANTUM_SAFE_BITS = 256


def quantum_safe(algorithm: int, length: int) -> bool:
    """Whether a symmetric key keeps at least 128 bits of strength against a quantum attacker
    (Triple DES never does: its strength is 112 bits at most even classically)."""
    return algorithm != A.DES3 and length >= QUANTUM_SAFE_BITS


def key_size(algorithm: int, length: int) -> int:
    """Bytes of key material for a key of ``length`` bits (Triple DES carries parity bits)."""
    return DES3_BYTES[length] if algorithm == A.DES3 and length in DES3_BYTES else length // 8


def with_odd_parity(key: bytes) -> bytes:
    """DES key bytes with each byte's low bit set so that the byte has odd parity."""
    return bytes((b & 0xFE) | ((b >> 1).bit_count() + 1) % 2 for b in key)


def _check_storage_masks(masks: ProtectionStorageMasks | None) -> None:
    """KMIP 2.x: the client may say where the object may be stored; this server keeps every
    object in software (its database), so one of the masks must allow that."""
    if masks is None or not masks.masks or any(int(mask) & PROTECTION_STORAGE for mask in masks.masks):
        return
    raise KmipError(
        "this server stores objects in software (Protection Storage Mask Software); none of the masks allows that",
        R.PROTECTION_STORAGE_UNAVAILABLE,
    )


def _generated_by_server(ctx: RequestContext, attrs: AttributeSet) -> None:
    """The attributes of an object whose value the server generates: its Random Number
    Generator (a client's must be the token's: KMIP 1.4 §3.44) and Original Creation Date (the
    Initial Date: §3.43); it is Fresh, whatever a client said."""
    generator = random_number_generator(ctx.custody.random_generator)
    if "Random Number Generator" in attrs and not attrs.has_value("Random Number Generator", generator.value):
        raise KmipError(
            "the requested Random Number Generator is not the one this server generates keys with",
            ctx.reason(R.INVALID_ATTRIBUTE_VALUE, R.INVALID_FIELD),
        )
    attrs.set_from("Random Number Generator", generator)
    attrs.set_from("Original Creation Date", date_attribute("Original Creation Date", ctx.now))
    attrs.delete("Fresh")


def store_new_object(
    ctx: RequestContext,
    object_type: ObjectType,
    attrs: AttributeSet,
    managed_object: Struct,
    *,
    digest_of: bytes | None,
    key_format: int | None,
    algorithm: int | None = None,
    length: int | None = None,
    has_value: bool = True,
    uid: str | None = None,
) -> str:
    """Give the object its server-set attributes, wrap its value and insert it; returns its UID
    (``uid``, or a new one). An object registered without a value (``has_value`` False) stores none."""
    uid = uid or new_unique_identifier()
    attrs.set_from("Initial Date", date_attribute("Initial Date", ctx.now))
    attrs.set_from("Last Change Date", date_attribute("Last Change Date", ctx.now))
    if digest_of is not None:
        attrs.set("Digest", digest(digest_of, key_format))
    insert_object(
        ctx,
        uid,
        object_type,
        attrs,
        managed_object if has_value else None,
        state=state_now(ctx, lifecycle.PRE_ACTIVE, attrs),
        key_format=key_format,
        algorithm=algorithm,
        length=length,
    )
    return uid


def _number(value: Any) -> int | None:
    return None if value is None else int(value)


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def digest(digest_of: bytes, key_format: int | None) -> Digest:
    """The Digest the server gives an object: SHA-256 of its value (KMIP 1.4 §3.17)."""
    return Digest(
        hashing_algorithm=HashingAlgorithm.SHA_256,
        digest_value=hashlib.sha256(digest_of).digest(),
        key_format_type=KeyFormatType(key_format) if key_format is not None else None,
    )


def insert_object(
    ctx: RequestContext,
    uid: str,
    object_type: int,
    attrs: AttributeSet,
    managed_object: Struct | None,
    *,
    state: int,
    key_format: int | None,
    algorithm: int | None,
    length: int | None,
    replacing: ObjectRecord | None = None,
) -> None:
    """Insert the object ``uid`` as it is given (its value, if any, wrapped by custody first),
    once the access policy's creation constraints admit it; owned by the caller in the
    caller's tenant, or as ``replacing`` (an object Import replaces) was."""
    new = NewObjectFacts(
        object_type=int(object_type),
        algorithm=algorithm,
        length=length,
        usage_mask=_number(attrs.first("Cryptographic Usage Mask")),
        extractable=_flag(attrs.first("Extractable")),
        sensitive=_flag(attrs.first("Sensitive")),
        names=tuple(str(getattr(a.value, "value", a.value)) for _, a in attrs.instances("Name")),
        object_group=tuple(str(a.value) for _, a in attrs.instances("Object Group")),
        operation_policy_name=_text(attrs.first("Operation Policy Name")),
    )
    owner, tenant = admit_new_object(ctx, new)
    if replacing is not None:
        owner, tenant = replacing.owner, replacing.tenant
    blob = (
        None if managed_object is None else ctx.custody.wrap(to_bytes(managed_object), wrap_context(uid, object_type))
    )
    ctx.session.insert(
        ObjectRecord(
            uid=uid,
            object_type=int(object_type),
            owner=owner,
            tenant=tenant,
            state=state,
            created=ctx.now,
            algorithm=algorithm,
            length=length,
            value_format=key_format,
            wrapped_value=blob,
            custody_key=ctx.custody.master_key_id,
            attributes=attrs.all_rows(),
        )
    )
    ctx.id_placeholder = uid


def _key_block(
    key: bytes | TransparentKeyMaterial, key_format: int, algorithm: int | None, length: int | None
) -> KeyBlock:
    return KeyBlock(
        key_format_type=KeyFormatType(key_format),
        key_value=KeyValue(key_material=key),
        cryptographic_algorithm=_enum(CryptographicAlgorithm, algorithm),
        cryptographic_length=length,
    )


def _enum(enum: type[IntEnum], value: int | None) -> IntEnum | None:
    if value is None:
        return None
    try:
        return enum(value)
    except ValueError:
        return None


def _given(ctx: RequestContext, request: CreateRequest) -> list[Attribute]:
    """The attributes a Create asks for, less the non-attributes a named client adds to its
    1.x Template-Attribute (engine/quirks.py), which are ignored."""
    given = requested_attributes(ctx, request.template_attribute, request.attributes)
    if request.template_attribute is None:
        return given
    kept = []
    for attr in given:
        quirk = IGNORED_CREATE_ATTRIBUTES.get(attr.name) if attr.vendor is None else None
        if quirk is not None and attr.type in (None, ItemType.INTEGER) and isinstance(attr.value, int):
            warn_once(quirk, ctx.identity.name, f"Create carried {attr.name!r}, which is not an attribute: ignored")
        else:
            kept.append(attr)
    return kept


@operation(Operation.CREATE, writes=True)
def create(ctx: RequestContext, request: CreateRequest) -> Struct:
    secret = request.object_type == ObjectType.SECRET_DATA and ctx.v2
    if request.object_type != ObjectType.SYMMETRIC_KEY and not secret:
        supported = "Symmetric Key and (KMIP 2.x) Secret Data" if ctx.v2 else "Symmetric Key"
        raise KmipError(
            f"Create makes {supported} objects; other object types are not supported",
            ctx.reason(R.INVALID_OBJECT_TYPE, R.INVALID_FIELD),
        )
    _check_storage_masks(request.protection_storage_masks)
    attrs = AttributeSet()
    apply_initial(ctx, attrs, _given(ctx, request))
    if secret:
        return _create_secret_data(ctx, attrs)
    uid = store_generated_key(ctx, attrs)
    return CreateResponse(object_type=ObjectType.SYMMETRIC_KEY, unique_identifier=uid)


def store_generated_key(ctx: RequestContext, attrs: AttributeSet, *, uid: str | None = None) -> str:
    """A new Symmetric Key of the algorithm and length ``attrs`` name (checked), its value from
    the token, stored (Create and Re-key); its Unique Identifier."""
    algorithm, length = _symmetric_parameters(ctx, attrs, None)
    _generated_by_server(ctx, attrs)
    key = ctx.custody.random(key_size(algorithm, length))
    if algorithm == A.DES3:
        key = with_odd_parity(key)
    managed = SymmetricKey(key_block=_key_block(key, KeyFormatType.RAW, algorithm, length))
    return store_new_object(
        ctx,
        ObjectType.SYMMETRIC_KEY,
        attrs,
        managed,
        digest_of=key,
        key_format=KeyFormatType.RAW,
        algorithm=algorithm,
        length=length,
        uid=uid,
    )


SECRET_DATA_BITS = (8, 8192)  # what a generated Secret Data may be, in bits (whole bytes)
DEFAULT_SECRET_BITS = 256


def _create_secret_data(ctx: RequestContext, attrs: AttributeSet) -> Struct:
    """KMIP 2.x Create of Secret Data: random bytes from the token, Cryptographic Length bits of
    them (default 256), stored as an Opaque key block of Secret Data Type Seed (random bytes a
    client derives from: the type that says what they are)."""
    for name in ("Cryptographic Algorithm", "Cryptographic Parameters"):
        if name in attrs:
            raise invalid_attribute_value(ctx, f"Secret Data has no {name}: send the Cryptographic Length alone")
    bits = attrs.first("Cryptographic Length")
    bits = DEFAULT_SECRET_BITS if bits is None else int(bits)
    low, high = SECRET_DATA_BITS
    if bits % 8 or not low <= bits <= high:
        raise invalid_attribute_value(
            ctx, f"a generated Secret Data is {low} to {high} bits long, in whole bytes; not {bits}"
        )
    attrs.set("Cryptographic Length", bits, ItemType.INTEGER)
    _generated_by_server(ctx, attrs)
    secret = ctx.custody.random(bits // 8)
    block = KeyBlock(key_format_type=KeyFormatType.OPAQUE, key_value=KeyValue(key_material=secret))
    managed = SecretData(secret_data_type=SecretDataType.SEED, key_block=block)
    uid = store_new_object(
        ctx, ObjectType.SECRET_DATA, attrs, managed, digest_of=secret, key_format=KeyFormatType.OPAQUE, length=bits
    )
    return CreateResponse(object_type=ObjectType.SECRET_DATA, unique_identifier=uid)
