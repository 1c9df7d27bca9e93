"""Split Key objects (KMIP 1.4 §2.2.5, 2.1 §2.8): one part of a secret split among key holders.

Register checks what the specification requires of the split parameters (every field present;
1 ≤ Key Part Identifier ≤ Split Key Parts; 1 ≤ Split Key Threshold ≤ Split Key Parts; a Prime
Field Size for Polynomial Sharing over a prime field, and none otherwise; XOR splitting needs
every part, so its threshold is the number of parts) and keeps the part as given: its Key
Block (plaintext bytes, unwrapped first when it arrived wrapped) under the master key like any
other value, the algorithm and length of the secret it is part of as attributes. Get returns
it as registered. The server does not combine parts (Join Split Key is not offered).
"""

from __future__ import annotations

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model import Struct
from kmip_client.protocol.model.objects import KeyValue, SplitKey, TransparentKeyMaterial
from kmip_client.protocol.spec.enums import KeyFormatType, ResultReason, SplitKeyMethod
from kmip_client.protocol.ttlv import ItemType

from ..engine.context import RequestContext
from ..objects.attribute_set import AttributeSet
from .common import invalid_attribute_value

R = ResultReason
_FORMATS = frozenset({KeyFormatType.RAW, KeyFormatType.OPAQUE, KeyFormatType.TRANSPARENT_SYMMETRIC_KEY})
_PRIME_FIELD = SplitKeyMethod.POLYNOMIAL_SHARING_PRIME_FIELD


def _check_parameters(ctx: RequestContext, part: SplitKey) -> None:
    parts, index, threshold, method = (
        part.split_key_parts,
        part.key_part_identifier,
        part.split_key_threshold,
        part.split_key_method,
    )
    if parts is None or index is None or threshold is None or method is None:
        raise KmipError(
            "a Split Key needs Split Key Parts, Key Part Identifier, Split Key Threshold and Split Key Method",
            ctx.reason(R.MISSING_DATA, R.INVALID_FIELD),
        )
    if not 1 <= index <= parts:
        raise invalid_attribute_value(ctx, f"Key Part Identifier {index} is not from 1 to Split Key Parts ({parts})")
    if not 1 <= threshold <= parts:
        raise invalid_attribute_value(
            ctx, f"Split Key Threshold {threshold} is not from 1 to Split Key Parts ({parts})"
        )
    if method == SplitKeyMethod.XOR and threshold != parts:
        raise invalid_attribute_value(
            ctx, f"XOR splitting needs every part: Split Key Threshold must be {parts}, not {threshold}"
        )
    if method == _PRIME_FIELD and not part.prime_field_size:
        raise KmipError(
            "Polynomial Sharing over a prime field needs the Prime Field Size",
            ctx.reason(R.MISSING_DATA, R.INVALID_FIELD),
        )
    if method != _PRIME_FIELD and part.prime_field_size is not None:
        raise invalid_attribute_value(
            ctx, f"a Prime Field Size belongs to Polynomial Sharing Prime Field, not {method.name}"
        )


def split_key(ctx: RequestContext, part: SplitKey, attrs: AttributeSet) -> tuple[Struct, bytes, int]:
    """A registered Split Key checked: the object to store, the bytes its Digest is of, its format."""
    _check_parameters(ctx, part)
    block = part.key_block
    if block is None or not isinstance(block.key_value, KeyValue):
        raise KmipError("a Split Key needs a Key Block with a Key Value", R.INVALID_FIELD)
    fmt, material = block.key_format_type, block.key_value.key_material
    if fmt not in _FORMATS:
        raise KmipError(
            f"Key Format Type {getattr(fmt, 'name', fmt)} is not supported for a Split Key (Raw, Opaque, "
            "Transparent Symmetric Key)",
            R.KEY_FORMAT_TYPE_NOT_SUPPORTED,
        )
    if isinstance(material, TransparentKeyMaterial):
        material = material.key
    if not isinstance(material, bytes) or not material:
        raise KmipError("a Split Key's Key Material is a non-empty Byte String", R.INVALID_FIELD)
    for name, value, kind in (
        ("Cryptographic Algorithm", block.cryptographic_algorithm, ItemType.ENUMERATION),
        ("Cryptographic Length", block.cryptographic_length, ItemType.INTEGER),
    ):
        if value is not None and name not in attrs:
            attrs.set(name, value, kind)
    assert fmt is not None
    return part, material, int(fmt)
