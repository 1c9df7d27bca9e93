"""The key a cryptographic operation uses: loaded, checked and unwrapped for that one operation.

Every crypto handler goes through :func:`key_for`. It loads the object the caller may use,
applies the lifecycle rule of KMIP 1.4 §3.22 / 2.1 §4.57 (an object is used to *apply*
protection, encrypt, sign, MAC, derive, only while Active; to *process* protected data,
decrypt or verify, also while Deactivated or Compromised; never before activation or after
destruction), checks the Cryptographic Usage Mask, and asks custody to unwrap the value.

The plaintext key lives in the returned :class:`KeyInUse` for the handler's call and nowhere
else, unless the operator configures the unwrapped-key cache (:func:`configure`): a bounded,
per-process map from the stored wrapped value to its plaintext, for at most ``seconds``. It
saves the custody call (one HSM round trip) per operation; what it costs is that up to
``size`` plaintext keys stay in the worker's memory for that long after their last use. The
cache key is the wrapped value itself, so a key whose value or state changed is never served
from it (the row and its state are read on every operation).
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any

from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.model.attributes import CryptographicParameters
from kmip_client.protocol.model.objects import KeyBlock, KeyValue, TransparentKeyMaterial
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, CryptographicUsageMask, ObjectType, ResultReason

from ...crypto_settings import CryptoSettings
from ...engine.context import RequestContext
from ...objects import lifecycle
from ..common import ManagedObject, as_seconds, decoded_object, destroyed, load_object, wrap_context, wrong_state_reason

R = ResultReason
Usage = CryptographicUsageMask

#: Applying protection needs an Active key (KMIP 1.4 §3.22: a Deactivated or Compromised object
#: "SHALL NOT be used for applying cryptographic protection").
PROTECT_STATES = frozenset({lifecycle.ACTIVE})
#: Processing protected data (decrypt, verify, unwrap) is also allowed after deactivation or
#: compromise ("MAY be used to process cryptographically-protected information").
PROCESS_STATES = frozenset({lifecycle.ACTIVE, lifecycle.DEACTIVATED, lifecycle.COMPROMISED})

#: The attributes an operation with a key reads (the rest are not loaded): the state's dates,
#: the usage rules and the parameters to fall back on. Sorted: the store's order.
USED_ATTRIBUTES = tuple(
    sorted(
        (
            "Activation Date",
            "Cryptographic Parameters",
            "Cryptographic Usage Mask",
            "Deactivation Date",
            "Process Start Date",
            "Protect Stop Date",
            "Usage Limits",
        )
    )
)

_KEY_TYPES = frozenset(
    {
        int(ObjectType.SYMMETRIC_KEY),
        int(ObjectType.PRIVATE_KEY),
        int(ObjectType.PUBLIC_KEY),
        int(ObjectType.SECRET_DATA),
    }
)


@dataclasses.dataclass(slots=True)
class KeyInUse:
    """An object unwrapped for one operation. ``block`` holds plaintext key material."""

    obj: ManagedObject
    object_type: int
    block: KeyBlock = dataclasses.field(repr=False)

    @property
    def uid(self) -> str:
        return self.obj.uid

    @property
    def algorithm(self) -> int | None:
        algorithm = self.block.cryptographic_algorithm
        return int(algorithm) if algorithm is not None else self.obj.record.algorithm

    @property
    def length(self) -> int | None:
        return self.block.cryptographic_length or self.obj.record.length

    @property
    def key_format_type(self) -> int | None:
        fmt = self.block.key_format_type
        return int(fmt) if fmt is not None else None

    @property
    def material(self) -> bytes | TransparentKeyMaterial | None:
        value = self.block.key_value
        return value.key_material if isinstance(value, KeyValue) else None

    def raw(self) -> bytes:
        """The key bytes of a symmetric key or secret (Raw, Opaque or Transparent Symmetric)."""
        material = self.material
        if isinstance(material, TransparentKeyMaterial):
            material = material.key
        if not isinstance(material, bytes):
            raise KmipError(f"object {self.uid!r} holds no symmetric key bytes", R.INVALID_FIELD)
        return material

    def stored_parameters(self) -> list[CryptographicParameters]:
        """The object's Cryptographic Parameters attribute values (1.x allows several)."""
        return [attr.value for _, attr in self.obj.attributes.instances("Cryptographic Parameters")]


_settings = CryptoSettings()
# wrapped value -> (plaintext TTLV of the managed object, expiry on the monotonic clock)
_cache: collections.OrderedDict[bytes, tuple[bytes, float]] = collections.OrderedDict()


def configure(settings: CryptoSettings) -> None:
    """Set this process's unwrapped-key cache (called once per worker at start)."""
    global _settings
    _settings = settings
    _cache.clear()


def clear_cache() -> None:
    _cache.clear()


def _unwrapped(ctx: RequestContext, blob: bytes, uid: str, object_type: int) -> bytes:
    if _settings.key_cache_size <= 0:
        return ctx.custody.unwrap(blob, wrap_context(uid, object_type))
    now = time.monotonic()
    hit = _cache.get(blob)
    if hit is not None and hit[1] > now:
        _cache.move_to_end(blob)
        return hit[0]
    plain = ctx.custody.unwrap(blob, wrap_context(uid, object_type))
    _cache[blob] = (plain, now + _settings.key_cache_seconds)
    while len(_cache) > _settings.key_cache_size:
        _cache.popitem(last=False)
    return plain


def unusable_state(ctx: RequestContext, obj: ManagedObject, action: str) -> KmipError:
    return KmipError(
        f"cannot {action} with object {obj.uid!r}: it is {lifecycle.state_name(obj.state)}",
        wrong_state_reason(ctx),
    )


def _check_usage_period(ctx: RequestContext, obj: ManagedObject, protects: bool, action: str) -> None:
    """Protect Stop Date ends the applying of protection, Process Start Date begins the
    processing of it (KMIP 1.4 §3.25/§3.26, 2.1 §4.40/§4.41), whatever the state says; the
    OASIS vectors (CS-AC-M-8) expect the reason of a wrong state."""
    name = "Protect Stop Date" if protects else "Process Start Date"
    when = as_seconds(obj.attributes.first(name))
    if when is None or (ctx.now < when if protects else ctx.now >= when):
        return
    raise KmipError(
        f"cannot {action} with object {obj.uid!r}: its {name} forbids it now",
        wrong_state_reason(ctx),
    )


def key_for(
    ctx: RequestContext, given_uid: Any, *, usage: Usage, protects: bool, action: str, sets_placeholder: bool = True
) -> KeyInUse:
    """The key ``given_uid`` (or the ID Placeholder) names, ready for ``usage``.

    ``protects``: the operation applies protection (needs Active) rather than processing it.
    ``action`` names the operation in error messages ("encrypt", "verify a signature").
    ``sets_placeholder``: the key becomes the ID Placeholder, as for an operation on the key
    itself; False for a key an operation on another object uses (a wrapping or issuing key).
    """
    obj = load_object(ctx, given_uid, names=USED_ATTRIBUTES)
    record = obj.record
    if obj.destroyed:
        raise destroyed(ctx, obj.uid, "has been destroyed; its value is gone")
    if record.object_type not in _KEY_TYPES:
        raise KmipError(
            f"object {obj.uid!r} is a {ObjectType(record.object_type).name.replace('_', ' ').title()}, not a key",
            R.INVALID_OBJECT_TYPE if ctx.v2 else R.ILLEGAL_OPERATION,
        )
    if obj.state not in (PROTECT_STATES if protects else PROCESS_STATES):
        raise unusable_state(ctx, obj, action)
    _check_usage_period(ctx, obj, protects, action)
    mask = obj.attributes.first("Cryptographic Usage Mask")
    if mask is None or not int(mask) & int(usage):
        raise KmipError(
            f"object {obj.uid!r} may not be used to {action}: its Cryptographic Usage Mask lacks {usage.name}",
            ctx.defined_reason(R.INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK, R.PERMISSION_DENIED),
        )
    if record.wrapped_value is None:
        raise KmipError(
            f"object {obj.uid!r} has no value on this server",
            ctx.defined_reason(R.KEY_VALUE_NOT_PRESENT, R.ILLEGAL_OPERATION),
        )
    managed = decoded_object(_unwrapped(ctx, record.wrapped_value, record.uid, record.object_type))
    block = getattr(managed, "key_block", None)
    if not isinstance(block, KeyBlock):
        raise KmipError(
            f"object {obj.uid!r} has no key block", R.INVALID_OBJECT_TYPE if ctx.v2 else R.ILLEGAL_OPERATION
        )
    if sets_placeholder:
        ctx.id_placeholder = obj.uid
    return KeyInUse(obj, record.object_type, block)


def parameters(given: CryptographicParameters | None, key: KeyInUse | None) -> CryptographicParameters:
    """The Cryptographic Parameters an operation runs with: the request's, else the key's own
    Cryptographic Parameters attribute (KMIP 2.1 §6.1.19: "If the Cryptographic Parameters are
    omitted from the request, then the server SHALL use the Cryptographic Parameters attribute
    associated with the Managed Object"), with the key's Cryptographic Algorithm when neither
    names one."""
    if given is None:
        stored = key.stored_parameters() if key is not None else []
        given = stored[0] if stored else CryptographicParameters()
    if given.cryptographic_algorithm is None and key is not None and key.algorithm is not None:
        given = dataclasses.replace(given, cryptographic_algorithm=CryptographicAlgorithm(key.algorithm))
    return given
