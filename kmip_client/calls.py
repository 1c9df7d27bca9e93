"""Each client operation as a :class:`Call`: the batch item to send and how to read its answer.

The blocking :class:`~kmip_client.Client` and the asyncio
:class:`~kmip_client.aio.AsyncClient` differ only in how they move bytes; both get their
requests from :class:`Calls`, so an operation is written once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import IntEnum
from typing import Any

from . import operations as ops
from .crypto_calls import CryptoCalls, algorithm_of, crypto_parameters, default_usage, enum_member
from .operations import Call, KeyPair, OperationPending, ServerInfo, Version
from .protocol.model import Attribute, Attributes, Struct
from .protocol.model.attributes import CryptographicDomainParameters, Link, RevocationReason, attribute_for_version
from .protocol.model.objects import Certificate, EncryptionKeyInformation, KeyWrappingData, KeyWrappingSpecification
from .protocol.model.payloads.structures import attribute_reference
from .protocol.spec.enums import (
    AdjustmentType,
    CancellationResult,
    CertificateRequestType,
    CertificateType,
    EncodingOption,
    KeyFormatType,
    LinkType,
    ObjectType,
    Operation,
    QueryFunction,
    RecommendedCurve,
    RevocationReasonCode,
    SecretDataType,
    State,
    ValidityIndicator,
    WrappingMethod,
)

__all__ = ["Call", "Calls", "algorithm_of", "curve_of", "wrapping_of"]


def _uid(payload: Any) -> str:
    return str(payload.unique_identifier)


def _key_pair(payload: Any) -> KeyPair:
    return KeyPair(str(payload.private_key_unique_identifier), str(payload.public_key_unique_identifier))


def wrapping_of(
    wrap_with: str | None, options: Mapping[str, Any] | None, encoding: EncodingOption | str | None
) -> KeyWrappingSpecification | None:
    """A Key Wrapping Specification (Wrapping Method Encrypt) under key ``wrap_with``: the
    Cryptographic Parameters from ``options`` (:class:`CryptoOptions`: ``mode="NISTKEYWRAP"``,
    ``padding="OAEP"`` ...), the Encoding Option by enum or name ("none", "ttlv")."""
    if wrap_with is None:
        if options or encoding is not None:
            raise ValueError("wrapping options without a wrapping key (wrap_with)")
        return None
    if isinstance(encoding, str):
        encoding = enum_member(
            EncodingOption, {"none": "NO_ENCODING", "ttlv": "TTLV_ENCODING"}.get(encoding.lower(), encoding)
        )
    return KeyWrappingSpecification(
        wrapping_method=WrappingMethod.ENCRYPT,
        encryption_key_information=EncryptionKeyInformation(
            unique_identifier=wrap_with, cryptographic_parameters=crypto_parameters(options or {})
        ),
        encoding_option=encoding,
    )


def curve_of(value: RecommendedCurve | str) -> RecommendedCurve:
    """A Recommended Curve by enum or by name ("P-256", "p_384", "CURVE25519")."""
    if isinstance(value, str):
        try:
            return RecommendedCurve[value.upper().replace("-", "_")]
        except KeyError:
            raise ValueError(f"unknown curve {value!r}") from None
    return value


_QUERY = (QueryFunction.QUERY_OPERATIONS, QueryFunction.QUERY_OBJECTS, QueryFunction.QUERY_SERVER_INFORMATION)


class Calls(CryptoCalls):
    """The requests of protocol ``version``; see :class:`~kmip_client.Client` for what each does."""

    def __init__(self, version: Version) -> None:
        self.version = version
        self.v2 = version >= ops.V2

    def attributes(
        self, algorithm: Any, length: int | None, name: Any, usage_mask: int | None, extra: Mapping[str, Any] | None
    ) -> list[Attribute]:
        standard: dict[str, Any] = {
            "Cryptographic Algorithm": algorithm_of(algorithm) if algorithm is not None else None,
            "Cryptographic Length": length,
            "Cryptographic Usage Mask": usage_mask,
            "Name": name,
        }
        return ops.attributes_from(self.version, extra, **standard)

    def _new(self, attr: Attribute) -> Attributes:
        return Attributes(attributes=(attr,))

    # ------------------------------------------------------------------ server

    def discover_versions(self, versions: Sequence[Version]) -> Call:
        return Call(ops.discover_versions(versions), lambda p: [pv.as_tuple() for pv in p.protocol_versions])

    def query(self) -> Call:
        def parse(p: Any) -> ServerInfo:
            return ServerInfo(tuple(p.operations), tuple(p.object_types), p.vendor_identification)

        return Call(ops.request(Operation.QUERY, query_functions=_QUERY), parse)

    # ------------------------------------------------------------------ objects

    def create(
        self, algorithm: Any, length: int, name: Any, usage_mask: int | None, extra: Mapping[str, Any] | None
    ) -> Call:
        algorithm = algorithm_of(algorithm)
        mask = usage_mask if usage_mask is not None else default_usage(algorithm)
        given = self.attributes(algorithm, length, name, mask, extra)
        return Call(ops.create_symmetric_key(self.version, given), _uid)

    def create_key_pair(
        self,
        algorithm: Any,
        length: int | None,
        curve: Any,
        names: tuple[Any, Any],
        usage_masks: tuple[int | None, int | None],
        extras: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, Mapping[str, Any] | None],
    ) -> Call:
        """``names``, ``usage_masks``: (private, public); ``extras``: (common, private, public)."""
        domain = CryptographicDomainParameters(recommended_curve=curve_of(curve)) if curve is not None else None
        common = ops.attributes_from(
            self.version,
            extras[0],
            **{
                "Cryptographic Algorithm": algorithm_of(algorithm),
                "Cryptographic Length": length,
                "Cryptographic Domain Parameters": domain,
            },
        )
        private, public = (
            ops.attributes_from(self.version, extra, **{"Name": name, "Cryptographic Usage Mask": mask})
            for name, mask, extra in zip(names, usage_masks, extras[1:], strict=True)
        )
        fields = ops.pair_attribute_fields(self.version, common, private, public)
        return Call(ops.request(Operation.CREATE_KEY_PAIR, **fields), _key_pair)

    def certify(
        self,
        uid: Any,
        issuer: str | None,
        request: bytes | None,
        request_type: CertificateRequestType | None,
        name: Any,
        extra: Mapping[str, Any] | None,
    ) -> Call:
        link = Link(link_type=LinkType.CERTIFICATE_LINK, linked_object_identifier=issuer) if issuer else None
        given = ops.attributes_from(self.version, extra, **{"Name": name, "Link": link})
        fields: dict[str, Any] = dict(ops.attribute_set(self.version, given)) if given else {}
        if request is not None:
            kind = request_type or (
                CertificateRequestType.PEM if request.lstrip().startswith(b"-----") else CertificateRequestType.PKCS_10
            )
            fields["certificate_request_type"] = kind
            fields["certificate_request_value" if self.v2 else "certificate_request"] = request
        return Call(ops.request(Operation.CERTIFY, unique_identifier=uid, **fields), _uid)

    def recertify(self, uid: Any, offset: int | None, extra: Mapping[str, Any] | None) -> Call:
        given = ops.attributes_from(self.version, extra)
        fields = ops.attribute_set(self.version, given) if given else {}
        return Call(ops.request(Operation.RE_CERTIFY, unique_identifier=uid, offset=offset, **fields), _uid)

    def validate(self, certificates: Sequence[bytes], uids: Sequence[str], when: datetime | None) -> Call:
        given = tuple(
            Certificate(certificate_type=CertificateType.X_509, certificate_value=der) for der in certificates
        )
        request = ops.request(
            Operation.VALIDATE, certificates=given, unique_identifiers=tuple(uids), validity_date=when
        )
        return Call(request, lambda p: ValidityIndicator(p.validity_indicator))

    def rekey(self, uid: Any, offset: int | None, extra: Mapping[str, Any] | None) -> Call:
        given = ops.attributes_from(self.version, extra)
        fields = ops.attribute_set(self.version, given) if given else {}
        return Call(ops.request(Operation.RE_KEY, unique_identifier=uid, offset=offset, **fields), _uid)

    def rekey_key_pair(
        self,
        private_uid: Any,
        offset: int | None,
        extras: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None, Mapping[str, Any] | None],
    ) -> Call:
        """``extras``: (common, private, public) attributes for the new keys."""
        common, private, public = (ops.attributes_from(self.version, extra) for extra in extras)
        fields = ops.pair_attribute_fields(self.version, common, private, public)
        request = ops.request(
            Operation.RE_KEY_KEY_PAIR, private_key_unique_identifier=private_uid, offset=offset, **fields
        )
        return Call(request, _key_pair)

    def register(
        self,
        managed: Struct,
        object_type: ObjectType,
        name: Any,
        usage_mask: int | None,
        extra: Mapping[str, Any] | None,
    ) -> Call:
        given = self.attributes(None, None, name, usage_mask, extra)
        return Call(ops.register(self.version, managed, object_type, given), _uid)

    def register_key(self, key: bytes, algorithm: Any, name: Any, usage_mask: int | None, extra: Any) -> Call:
        return self.register(
            ops.symmetric_key(key, algorithm_of(algorithm)), ObjectType.SYMMETRIC_KEY, name, usage_mask, extra
        )

    def register_wrapped_key(
        self,
        wrapped: bytes,
        algorithm: Any,
        length: int,
        wrapping: KeyWrappingSpecification,
        iv: bytes | None,
        name: Any,
        usage_mask: int | None,
        extra: Any,
    ) -> Call:
        data = KeyWrappingData(
            wrapping_method=wrapping.wrapping_method,
            encryption_key_information=wrapping.encryption_key_information,
            iv_counter_nonce=iv,
            encoding_option=wrapping.encoding_option,
        )
        managed = ops.wrapped_symmetric_key(wrapped, algorithm_of(algorithm), length, data)
        return self.register(managed, ObjectType.SYMMETRIC_KEY, name, usage_mask, extra)

    def register_secret(self, data: bytes, secret_type: SecretDataType, name: Any, extra: Any) -> Call:
        return self.register(ops.secret_data(data, secret_type), ObjectType.SECRET_DATA, name, None, extra)

    def register_opaque(self, data: bytes, data_type: IntEnum | int, name: Any, extra: Any) -> Call:
        return self.register(ops.opaque_object(data, data_type), ObjectType.OPAQUE_OBJECT, name, None, extra)

    def get(self, uid: Any, key_format: KeyFormatType | None, wrapping: KeyWrappingSpecification | None = None) -> Call:
        request = ops.request(
            Operation.GET, unique_identifier=uid, key_format_type=key_format, key_wrapping_specification=wrapping
        )
        return Call(request, ops.managed_object)

    def locate(
        self,
        *,
        name: str | None,
        object_type: ObjectType | None,
        algorithm: Any,
        length: int | None,
        state: State | None,
        extra: Mapping[str, Any] | None,
        max_items: int | None,
        offset: int | None,
    ) -> Call:
        standard: dict[str, Any] = {
            "Object Type": object_type,
            "Name": name,
            "Cryptographic Algorithm": algorithm_of(algorithm) if algorithm is not None else None,
            "Cryptographic Length": length,
            "State": state,
        }
        given = ops.attributes_from(self.version, extra, **standard)
        item = ops.locate(self.version, given, max_items=max_items, offset=offset)
        return Call(item, lambda p: [str(uid) for uid in p.unique_identifiers])

    # ------------------------------------------------------------------ lifecycle

    def activate(self, uid: Any) -> Call:
        return Call(ops.request(Operation.ACTIVATE, unique_identifier=uid))

    def revoke(self, uid: Any, reason: RevocationReasonCode, message: str | None, date: datetime | None) -> Call:
        return Call(
            ops.request(
                Operation.REVOKE,
                unique_identifier=uid,
                revocation_reason=RevocationReason(code=reason, message=message),
                compromise_occurrence_date=date,
            )
        )

    def destroy(self, uid: Any) -> Call:
        return Call(ops.request(Operation.DESTROY, unique_identifier=uid))

    def check(self, uid: Any, usage_mask: int | None) -> Call:
        return Call(ops.request(Operation.CHECK, unique_identifier=uid, cryptographic_usage_mask=usage_mask))

    # ------------------------------------------------------------------ attributes

    def get_attributes(self, uid: Any, names: Sequence[str] | None) -> Call:
        return Call(ops.get_attributes(self.version, uid, names), ops.attribute_values)

    def add_attribute(self, uid: Any, name: str, value: Any) -> Call:
        attr = attribute_for_version(name, value, self.version)
        if self.v2:
            return Call(ops.request(Operation.ADD_ATTRIBUTE, unique_identifier=uid, new_attribute=self._new(attr)))
        return Call(ops.request(Operation.ADD_ATTRIBUTE, unique_identifier=uid, attribute=attr))

    def set_attribute(self, uid: Any, name: str, value: Any, *, exists: bool) -> Call:
        """2.x Set Attribute; 1.x has none: Modify when the object has the attribute, else Add."""
        attr = attribute_for_version(name, value, self.version)
        if self.v2:
            return Call(ops.request(Operation.SET_ATTRIBUTE, unique_identifier=uid, new_attribute=self._new(attr)))
        operation = Operation.MODIFY_ATTRIBUTE if exists else Operation.ADD_ATTRIBUTE
        return Call(ops.request(operation, unique_identifier=uid, attribute=attr))

    def modify_attribute(self, uid: Any, name: str, value: Any, current: Any, index: int) -> Call:
        if self.v2:
            fields: dict[str, Any] = {"new_attribute": self._new(attribute_for_version(name, value, self.version))}
            if current is not None:
                fields["current_attribute"] = self._new(attribute_for_version(name, current, self.version))
            return Call(ops.request(Operation.MODIFY_ATTRIBUTE, unique_identifier=uid, **fields))
        attr = Attribute(name=name, value=value, index=index or None)
        return Call(ops.request(Operation.MODIFY_ATTRIBUTE, unique_identifier=uid, attribute=attr))

    def delete_attribute(self, uid: Any, name: str, value: Any, index: int | None) -> Call:
        if self.v2:
            if value is not None:
                fields: dict[str, Any] = {
                    "current_attribute": self._new(attribute_for_version(name, value, self.version))
                }
            else:
                fields = {"attribute_reference": attribute_reference(name)}
            return Call(ops.request(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, **fields))
        return Call(
            ops.request(Operation.DELETE_ATTRIBUTE, unique_identifier=uid, attribute_name=name, attribute_index=index)
        )

    def adjust_attribute(self, uid: Any, name: str, by: int, how: AdjustmentType) -> Call:
        return Call(
            ops.request(
                Operation.ADJUST_ATTRIBUTE,
                unique_identifier=uid,
                attribute_reference=attribute_reference(name),
                adjustment_type=how,
                adjustment_value=by,
            )
        )

    # ------------------------------------------------------------------ asynchronous answers

    def poll(self, pending: OperationPending | bytes) -> Call:
        """Poll a held operation: its answer is read as the operation's own method reads it
        (``pending`` an :class:`OperationPending`), or generically (a correlation value alone,
        :func:`~kmip_client.operations.poll_result`). Operations whose method returns nothing
        (Destroy, Revoke, Activate) give the Unique Identifier the server answered with."""
        if isinstance(pending, OperationPending):
            correlation, held, parse = pending.correlation_value, pending.operation, pending.parse
        else:
            correlation, held, parse = bytes(pending), None, None
        if parse is None or parse is ops.no_result:
            parse = ops.poll_result
        return Call(ops.poll(correlation), parse, pending_as=held)

    def cancel(self, pending: OperationPending | bytes) -> Call:
        correlation = pending.correlation_value if isinstance(pending, OperationPending) else bytes(pending)
        return Call(ops.cancel(correlation), lambda p: CancellationResult(p.cancellation_result))
