"""One exception hierarchy for KMIP failures, keyed by Result Reason.

Every failure that can be reported to a KMIP peer is a :class:`KmipError` carrying the
Result Reason the peer will see and a human-readable message. Server handlers raise them;
the dispatcher alone turns them into batch-item results. Client code receives the same
classes when a server answers with Operation Failed.

Decoding errors are the peer's fault and are raised as :class:`ProtocolError`, which maps to
Invalid Message and records where in the input the problem was found.
"""

from __future__ import annotations

from .spec.enums import ResultReason

__all__ = [
    "KmipError",
    "ProtocolError",
    "InvalidMessage",
    "InvalidField",
    "ItemNotFound",
    "PermissionDenied",
    "OperationNotSupported",
    "WrongKeyLifecycleState",
    "CryptographicFailure",
    "GeneralFailure",
    "error_for_reason",
]


class KmipError(Exception):
    """A KMIP failure with the Result Reason a peer sees and a message for people."""

    reason: ResultReason = ResultReason.GENERAL_FAILURE

    def __init__(self, message: str, reason: ResultReason | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason.name}: {self.message!r})"


class InvalidMessage(KmipError):
    reason = ResultReason.INVALID_MESSAGE


class ProtocolError(InvalidMessage):
    """Input bytes or text that are not a valid KMIP encoding.

    ``offset`` is the byte offset (binary input) where decoding failed. ``path`` names the
    element ("RequestMessage/BatchItem/RequestPayload/ObjectType") when the error was found
    while mapping items to typed structures; decoders add the segments as the error travels
    up, so the happy path never builds path strings.
    """

    def __init__(self, message: str, offset: int | None = None, path: tuple[str, ...] = ()) -> None:
        self.detail = message
        self.offset = offset
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{'/'.join(self.path)}: {self.detail}" if self.path else self.detail
        if self.offset is not None:
            text = f"{text} (at byte offset {self.offset})"
        return text

    def within(self, element: str) -> ProtocolError:
        """Record that the error happened inside ``element``; returns self for ``raise``."""
        self.path = (element, *self.path)
        self.message = self._render()
        self.args = (self.message,)
        return self


class InvalidField(KmipError):
    reason = ResultReason.INVALID_FIELD


class ItemNotFound(KmipError):
    """No such object: KMIP 1.x's Item Not Found and 2.x's Object Not Found (``reason`` says which)."""

    reason = ResultReason.ITEM_NOT_FOUND


class PermissionDenied(KmipError):
    reason = ResultReason.PERMISSION_DENIED


class OperationNotSupported(KmipError):
    reason = ResultReason.OPERATION_NOT_SUPPORTED


class WrongKeyLifecycleState(KmipError):
    reason = ResultReason.WRONG_KEY_LIFECYCLE_STATE


class CryptographicFailure(KmipError):
    """The operation failed cryptographically: a tag, padding or ciphertext that does not check."""

    reason = ResultReason.CRYPTOGRAPHIC_FAILURE


class GeneralFailure(KmipError):
    reason = ResultReason.GENERAL_FAILURE


_BY_REASON: dict[ResultReason, type[KmipError]] = {
    cls.reason: cls
    for cls in (
        InvalidMessage,
        InvalidField,
        ItemNotFound,
        PermissionDenied,
        OperationNotSupported,
        WrongKeyLifecycleState,
        CryptographicFailure,
        GeneralFailure,
    )
}
# KMIP 2.x names a missing object Object Not Found; a caller catches one class in every version.
_BY_REASON[ResultReason.OBJECT_NOT_FOUND] = ItemNotFound


def error_for_reason(reason: ResultReason | int, message: str) -> KmipError:
    """Build the most specific exception for a Result Reason received from a peer."""
    try:
        reason = ResultReason(reason)
    except ValueError:
        # A vendor-specific reason: keep the general class but say which number it was.
        return GeneralFailure(f"{message} (result reason 0x{int(reason):08X})")
    cls = _BY_REASON.get(reason, KmipError)
    return cls(message, reason)
