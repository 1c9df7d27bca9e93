"""Replay of the OASIS KMIP profile test cases against a live server (``kmip replay``).

A test-case file is a conversation: RequestMessage, the ResponseMessage expected for it, the
next RequestMessage, and so on (the XML encoding, wrapped in ``<KMIP>``). :func:`replay_file`
sends each request in order and compares the response the server gives with the expected one.

Placeholders (see :mod:`.protocol.placeholders`):

* ``$NOW``, ``$NOW-s``, ``$NOW+s`` in a request become that time relative to the file's start;
  in an expected response they stand for a time the server chose, and match any date-time.
* Any other ``$NAME`` (``$UNIQUE_IDENTIFIER_0``, ``$SHORT_UNIQUE_IDENTIFIER_1`` ...) is bound
  the first time an expected response has it, to the value the server sent there; later
  responses must carry that same value, and later requests send it.

The comparison rules are in :mod:`.replay_compare` and written down in
``docs/conformance.md``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .protocol.errors import ProtocolError
from .protocol.spec import Tag, tag_name
from .protocol.ttlv import Item, decode, encode
from .protocol.xml_codec import items_from_xml_document
from .replay_compare import Comparison, Difference
from .transport import KmipTransportError

__all__ = [
    "CONTINUES",
    "Step",
    "CaseResult",
    "Exchange",
    "case_files",
    "case_name",
    "conversation_order",
    "predecessor",
    "load_steps",
    "replay_file",
    "replay_steps",
    "summary",
]

#: Sends one whole TTLV request message and returns the whole TTLV response message.
Exchange = Callable[[bytes], bytes]

#: Test cases that continue another's conversation, the one table of them (``kmip replay`` and
#: tests/conformance/run.py both read it): the Tape Library's TL-M-3 locates, reads and finally
#: destroys the key TL-M-2 created (TL-M-2 ends without destroying it); the Self-Encrypting
#: Drive's SASED-M-3 locates by Object Group, reads and destroys the Secret Data SASED-M-2
#: registered (and, in 1.3, the Template it registered). Such a file runs as the same client as
#: the file it continues, right after it, and that file's objects are left for it until the
#: continuation has run. Keys are case names without the version suffix.
CONTINUES = {"TL-M-3": "TL-M-2", "SASED-M-3": "SASED-M-2"}

_REQUEST = int(Tag.REQUEST_MESSAGE)
_RESPONSE = int(Tag.RESPONSE_MESSAGE)


@dataclasses.dataclass(frozen=True)
class Step:
    """One request of a conversation and the response expected for it."""

    number: int  # 1-based, in the file's order
    request: Item
    expected: Item


@dataclasses.dataclass
class CaseResult:
    """The outcome of one file: passed, or the first difference (or error) met."""

    path: Path
    steps: int
    difference: Difference | None = None
    created: list[str] = dataclasses.field(default_factory=list)  # identifiers bound, for clean-up
    last_response: Item | None = None  # the response that differed (for --verbose)
    version: tuple[int, int] | None = None  # the KMIP version the file speaks (for clean-up)

    @property
    def passed(self) -> bool:
        return self.difference is None

    def line(self, root: Path | None = None) -> str:
        """``PASS file`` or ``FAIL file: step N, path: expected X, got Y``."""
        name = (
            str(self.path.relative_to(root)) if root is not None and self.path.is_relative_to(root) else str(self.path)
        )
        if self.difference is None:
            return f"PASS {name}"
        return f"FAIL {name}: {self.difference}"


def load_steps(data: bytes) -> list[Step]:
    """The request/response pairs of a test-case document, in order."""
    items = items_from_xml_document(data, placeholders=True)
    steps: list[Step] = []
    pending: Item | None = None
    for position, item in enumerate(items, start=1):
        if item.tag == _REQUEST:
            if pending is not None:
                raise ProtocolError(f"message {position}: a RequestMessage follows a RequestMessage")
            pending = item
        elif item.tag == _RESPONSE:
            if pending is None:
                raise ProtocolError(f"message {position}: a ResponseMessage without a RequestMessage before it")
            steps.append(Step(len(steps) + 1, pending, item))
            pending = None
        else:
            raise ProtocolError(
                f"message {position}: expected a RequestMessage or ResponseMessage, got {tag_name(item.tag)}"
            )
    if pending is not None:
        raise ProtocolError("the last RequestMessage has no ResponseMessage after it")
    if not steps:
        raise ProtocolError("no RequestMessage in the file")
    return steps


def case_name(path: Path) -> str:
    """``TL-M-3-14.xml`` → ``TL-M-3``: the case, without the KMIP version suffix."""
    return path.stem.rsplit("-", 1)[0]


def predecessor(path: Path) -> Path:
    """The file ``path`` continues (same directory and version suffix), or ``path`` itself."""
    name = CONTINUES.get(case_name(path))
    if name is None:
        return path
    return path.with_name(f"{name}-{path.stem.rsplit('-', 1)[1]}{path.suffix}")


def conversation_order(files: Iterable[Path]) -> list[Path]:
    """``files`` in their order, except that a file continuing another that is among them runs
    right after it (the two are one conversation)."""
    given = list(files)
    present = set(given)
    after: dict[Path, list[Path]] = {}
    for path in given:
        first = predecessor(path)
        if first != path and first in present:
            after.setdefault(first, []).append(path)
    continuations = {p for group in after.values() for p in group}
    ordered: list[Path] = []
    for path in given:
        if path not in continuations:
            ordered.append(path)
            ordered.extend(after.get(path, ()))
    return ordered


def case_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The test-case files named, directories expanded to their ``*.xml`` files (sorted)."""
    for given in paths:
        path = Path(given)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.xml") if p.is_file())
        else:
            yield path


def replay_file(path: Path, exchange: Exchange, *, now: int | None = None) -> CaseResult:
    """Run the conversation in ``path`` through ``exchange``; stop at the first difference."""
    try:
        steps = load_steps(path.read_bytes())
    except (OSError, ProtocolError, ValueError) as error:
        return CaseResult(path, 0, Difference(0, "", "a readable test-case file", _error_text(error)))
    return replay_steps(path, steps, exchange, now=now)


def replay_steps(path: Path, steps: list[Step], exchange: Exchange, *, now: int | None = None) -> CaseResult:
    comparison = Comparison(now=int(time.time()) if now is None else now)
    result = CaseResult(path, len(steps), version=_version_of(steps[0].request))
    for step in steps:
        try:
            request = comparison.concrete_request(step.request)
        except KeyError as error:
            result.difference = Difference(step.number, "RequestMessage", "bound placeholders", str(error.args[0]))
            break
        try:
            answer = exchange(encode(request))
            actual = decode(answer)
        except (OSError, KmipTransportError, ProtocolError, ValueError) as error:
            result.difference = Difference(step.number, "ResponseMessage", "a response", _error_text(error))
            break
        difference = comparison.compare(step.number, step.expected, actual)
        if difference is not None:
            result.difference = difference
            result.last_response = actual
            break
    result.created = comparison.bound_identifiers()
    return result


def _version_of(request: Item) -> tuple[int, int] | None:
    """The Protocol Version in a request's header (None if the header has none)."""
    fields = {
        c.tag: c.value
        for header in request.value
        if header.tag == Tag.REQUEST_HEADER
        for version in header.value
        if version.tag == Tag.PROTOCOL_VERSION
        for c in version.value
    }
    major, minor = fields.get(Tag.PROTOCOL_VERSION_MAJOR), fields.get(Tag.PROTOCOL_VERSION_MINOR)
    return (major, minor) if isinstance(major, int) and isinstance(minor, int) else None


def _error_text(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"


def summary(results: list[CaseResult]) -> str:
    passed = sum(1 for r in results if r.passed)
    return f"{passed} passed, {len(results) - passed} failed"
