"""``kmip import FILE``: register many existing keys on a KMIP server (a migration from another
key manager), from a manifest of one JSON object per line (:mod:`kmip_client.import_manifest`).

The lines go in batches of ``--batch`` (50) Register items per request message, under Batch
Error Continuation Option Continue, so that an item the server refuses does not stop the
others. A batch takes at most three messages: with ``--skip-existing`` first one Locate by
Name per named line (a name the server has, or that an earlier line imported, is skipped),
then the Registers, then one Activate per registered object to activate. (A name repeated
within one batch waits for its first line's outcome: another round of them.) A message the
server refuses as a whole (more items than it takes, or an item it cannot read) ran nothing;
its items are sent again in two halves, and so on, so that a server with a lower
``max_batch_items`` is served within it and an unreadable item's refusal lands on its line alone.

Output: one result line per manifest line (blank lines aside), in the manifest's order, on
stdout or ``--out FILE``; ``--json`` makes each a JSON object. Then a summary on stderr, and
exit status 0 when every line was imported or skipped, 1 when any failed or was invalid.
Progress on stderr while it runs, on a terminal (or with ``--progress``). Key material never
appears in any of it: results name lines, fields, identifiers and the server's Result Reason.

A connection that fails mid-way stops the import at that batch: its lines are reported failed
(the server may have registered some of them), the lines after it are not attempted, and
running the same command again with ``--skip-existing`` finishes the job.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from .cli_commands import connection_options, run_client_command
from .client import Batch, Client
from .import_manifest import ImportItem, ManifestError, parse_line
from .operations import BatchResult
from .progress import ProgressPrinter, wanted
from .protocol.errors import KmipError
from .protocol.spec.enums import BatchErrorContinuationOption, ResultReason, ResultStatus
from .transport import KmipTransportError

__all__ = ["DEFAULT_BATCH", "Importer", "LineResult", "add_import_command", "manifest_lines"]

DEFAULT_BATCH = 50
#: The most Register items one message may carry here: the server's default ``max_batch_items``.
MAX_BATCH = 1000

IMPORTED, SKIPPED, FAILED, INVALID = "imported", "skipped", "failed", "invalid"


@dataclasses.dataclass(frozen=True)
class LineResult:
    """What became of one manifest line."""

    line: int
    status: str  # imported, skipped, failed or invalid
    name: str | None = None
    unique_identifier: str | None = None
    activated: bool = False
    reason: str | None = None  # the Result Reason of a KMIP failure
    message: str | None = None
    field: str | None = None  # for an invalid line: the field at fault (None: the line)

    @property
    def failed(self) -> bool:
        return self.status in (FAILED, INVALID)

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {key: value for key, value in data.items() if value is not None and value is not False}

    def text(self) -> str:
        shown = f" {json.dumps(self.name)}" if self.name is not None else ""
        if self.status == IMPORTED:
            done = " and activated" if self.activated else ""
            return f"line {self.line}: imported{shown} as {self.unique_identifier}{done}"
        if self.status == SKIPPED:
            return f"line {self.line}: skipped{shown}: {self.message} as {self.unique_identifier}"
        if self.status == INVALID:
            where = f"{self.field}: " if self.field else ""
            return f"line {self.line}: invalid{shown}: {where}{self.message}"
        reason = f"{self.reason}: " if self.reason else ""
        registered = f"registered as {self.unique_identifier}, but " if self.unique_identifier else ""
        return f"line {self.line}: failed{shown}: {registered}{reason}{self.message}"


def _failure(item: ImportItem, error: KmipError | None, **extra: Any) -> LineResult:
    if error is None:  # an item neither done nor refused (held): nothing to show for it
        error = KmipError("the server did not run this item", ResultReason.GENERAL_FAILURE)
    reason = getattr(error.reason, "name", None) or str(error.reason)
    return LineResult(item.line, FAILED, item.name, reason=reason, message=error.message, **extra)


class _ImportBatch(Batch):
    """A batch with the two items import needs besides Activate: Register and Locate by Name."""

    def register(self, item: ImportItem) -> Batch:
        return self._add(
            lambda calls: calls.register(item.managed, item.object_type, item.name, item.usage_mask, item.attributes)
        )

    def locate_name(self, name: str) -> Batch:
        return self._add(
            lambda calls: calls.locate(
                name=name,
                object_type=None,
                algorithm=None,
                length=None,
                state=None,
                extra=None,
                max_items=1,
                offset=None,
            )
        )


_Add = Callable[[_ImportBatch], object]


class Importer:
    """Registers :class:`ImportItem` batches through ``client``; ``skip_existing`` skips names
    the server has, or that this import registered from an earlier line."""

    def __init__(self, client: Client, *, skip_existing: bool = False) -> None:
        self.client = client
        self.skip_existing = skip_existing
        #: name -> (its object, the manifest line that imported it; None: it was on the server)
        self.names: dict[str, tuple[str, int | None]] = {}

    def run(self, items: Sequence[ImportItem], results: dict[int, LineResult]) -> None:
        """Import one batch, entering each line's outcome in ``results`` as it is known (a
        transport failure raised mid-way leaves the outcomes known so far)."""
        pending = list(items)
        while pending:
            chosen, pending = self._take(pending, results)
            if self.skip_existing:
                chosen = self._not_on_server(chosen, results)
            registered = self._register(chosen, results)
            self._activate([(item, uid) for item, uid in registered if item.activate], results)

    def _take(
        self, pending: list[ImportItem], results: dict[int, LineResult]
    ) -> tuple[list[ImportItem], list[ImportItem]]:
        """The items to send now, and those to send after them: a name repeated in the batch
        waits for its first line's outcome, which decides whether it is skipped."""
        if not self.skip_existing:
            return pending, []
        chosen: list[ImportItem] = []
        later: list[ImportItem] = []
        names: set[str] = set()
        for item in pending:
            if item.name is None:
                chosen.append(item)
            elif item.name in self.names:
                uid, line = self.names[item.name]
                said = "exists" if line is None else f"line {line} of this manifest imported it"
                results[item.line] = LineResult(item.line, SKIPPED, item.name, uid, message=said)
            elif item.name in names:
                later.append(item)
            else:
                names.add(item.name)
                chosen.append(item)
        return chosen, later

    def _not_on_server(self, items: list[ImportItem], results: dict[int, LineResult]) -> list[ImportItem]:
        named = [item for item in items if item.name is not None]
        if not named:
            return items
        adds = [_locating(item.name) for item in named if item.name is not None]
        answers = dict(zip((item.line for item in named), self._send(adds), strict=True))
        remaining = []
        for item in items:
            answer = answers.get(item.line)
            if answer is None or (answer.ok and not answer.value):
                remaining.append(item)
            elif answer.ok and item.name is not None:
                uid = str(answer.value[0])
                self.names[item.name] = (uid, None)
                results[item.line] = LineResult(item.line, SKIPPED, item.name, uid, message="exists")
            else:
                results[item.line] = _failure(item, answer.error)
        return remaining

    def _register(self, items: list[ImportItem], results: dict[int, LineResult]) -> list[tuple[ImportItem, str]]:
        if not items:
            return []
        registered = []
        for item, answer in zip(items, self._send([_registering(item) for item in items]), strict=True):
            if not answer.ok:
                results[item.line] = _failure(item, answer.error)
                continue
            uid = str(answer.value)
            results[item.line] = LineResult(item.line, IMPORTED, item.name, uid)
            if item.name is not None:
                self.names[item.name] = (uid, item.line)
            registered.append((item, uid))
        return registered

    def _activate(self, registered: list[tuple[ImportItem, str]], results: dict[int, LineResult]) -> None:
        if not registered:
            return
        for (item, uid), answer in zip(
            registered, self._send([_activating(uid) for _, uid in registered]), strict=True
        ):
            if answer.ok:
                results[item.line] = dataclasses.replace(results[item.line], activated=True)
            else:
                results[item.line] = _failure(item, answer.error, unique_identifier=uid)

    def _send(self, adds: Sequence[_Add]) -> list[BatchResult]:
        """One message with an item per ``adds``; one result per item, in order."""
        batch = _ImportBatch(self.client, BatchErrorContinuationOption.CONTINUE)
        for add in adds:
            add(batch)
        answers = batch.send()
        if len(answers) == len(adds):
            return answers
        if len(adds) > 1 and not any(answer.ok for answer in answers):
            # Refused as a whole (more items than the server takes, or one it cannot read):
            # nothing ran. Halves go under a lower limit, and isolate an unreadable item.
            half = len(adds) // 2
            return [*self._send(adds[:half]), *self._send(adds[half:])]
        unanswered = BatchResult(
            None,
            ResultStatus.OPERATION_FAILED,
            error=KmipError("the server's answer left this item out", ResultReason.GENERAL_FAILURE),
        )
        return [*answers, *[unanswered] * len(adds)][: len(adds)]


def _locating(name: str) -> _Add:
    return lambda batch: batch.locate_name(name)


def _registering(item: ImportItem) -> _Add:
    return lambda batch: batch.register(item)


def _activating(uid: str) -> _Add:
    return lambda batch: batch.activate(uid)


# ---- the command


def manifest_lines(data: bytes) -> list[tuple[int, str | None]]:
    """The non-blank lines of a manifest, numbered from 1; None for a line that is not UTF-8."""
    found: list[tuple[int, str | None]] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            found.append((number, None))
            continue
        if text.strip():
            found.append((number, text))
    return found


def _read_manifest(path: str) -> tuple[bytes, Path]:
    """The manifest's bytes, and the directory its ``pem_file`` paths are relative to."""
    if path == "-":
        return sys.stdin.buffer.read(), Path.cwd()
    source = Path(path).expanduser()
    return source.read_bytes(), source.resolve().parent


def _parse(number: int, text: str | None, base: Path, activate: bool) -> ImportItem | LineResult:
    try:
        if text is None:
            raise ManifestError(number, None, "not UTF-8 text")
        return parse_line(number, text, base, activate=activate)
    except ManifestError as error:
        return LineResult(number, INVALID, error.name, message=error.problem, field=error.field)


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8") as stream:
        yield stream


def _import(client: Client, args: argparse.Namespace) -> int:
    data, base = _read_manifest(args.file)
    lines = manifest_lines(data)
    importer = Importer(client, skip_existing=args.skip_existing)
    printer = None
    if wanted(sys.stderr, args.progress):
        printer = ProgressPrinter(sys.stderr, "{done}/{total} keys done, {failed} failed", prefix="kmip import: ")
    counts: collections.Counter[str] = collections.Counter()
    stopped: str | None = None
    with _output(args.out) as out:
        # Result lines on the terminal the progress line is on would land inside it.
        shares_terminal = printer is not None and printer.tty and wanted(out)
        try:
            for start in range(0, len(lines), args.batch):
                chunk = lines[start : start + args.batch]
                results: dict[int, LineResult] = {}
                items = []
                for number, text in chunk:
                    parsed = _parse(number, text, base, args.activate)
                    if isinstance(parsed, LineResult):
                        results[number] = parsed
                    else:
                        items.append(parsed)
                try:
                    importer.run(items, results)
                except (KmipTransportError, KmipError) as error:
                    stopped = _stop(error, chunk, results)
                if printer is not None and shares_terminal:
                    printer.clear()
                for number, _ in chunk:
                    result = results[number]
                    counts[result.status] += 1
                    out.write((json.dumps(result.as_json()) if args.json else result.text()) + "\n")
                out.flush()
                if printer is not None:
                    printer(start + len(chunk), len(lines), failed=counts[FAILED] + counts[INVALID])
                if stopped is not None:
                    break
        finally:
            if printer is not None:
                printer.finish()
    summary = ", ".join(f"{counts[status]} {status}" for status in (IMPORTED, SKIPPED, FAILED, INVALID))
    print(f"kmip import: {summary}" if lines else "kmip import: the manifest has no lines", file=sys.stderr)
    if stopped is not None:
        print(f"kmip import: stopped: {stopped}", file=sys.stderr)
    return 1 if stopped is not None or counts[FAILED] or counts[INVALID] else 0


def _stop(error: Exception, chunk: Sequence[tuple[int, str | None]], results: dict[int, LineResult]) -> str:
    """Mark the batch's undecided lines failed after the connection failed; what to say."""
    if isinstance(error, KmipError):
        said = f"{getattr(error.reason, 'name', error.reason)}: {error.message}"
    else:
        said = f"{type(error).__name__}: {error}"
    undecided = [number for number, _ in chunk if number not in results]
    for number in undecided:
        message = f"the exchange failed ({said}); the server may or may not have registered it"
        results[number] = LineResult(number, FAILED, message=message)
    last = chunk[-1][0]
    return (
        f"{said} (in the batch of lines {chunk[0][0]} to {last}); the lines after line {last} were not "
        "attempted: run the same command with --skip-existing to go on"
    )


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_BATCH}")
    return value


def add_import_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import`` to the ``kmip`` parser's ``commands``."""
    help_text = "register many existing keys from a manifest (JSON Lines), in batches"
    sub = commands.add_parser(
        "import",
        parents=[connection_options()],
        help=help_text,
        description=help_text + ". One result line per manifest line; exit 1 if any line failed. "
        "The manifest's format: README, 'Importing many keys'.",
    )
    sub.add_argument("file", metavar="FILE", help="the manifest: one JSON object per line ('-': stdin)")
    sub.add_argument(
        "--batch",
        type=_batch_size,
        default=DEFAULT_BATCH,
        metavar="N",
        help=f"Register items per request message (default {DEFAULT_BATCH}, at most {MAX_BATCH})",
    )
    sub.add_argument("--out", metavar="FILE", help="write the result lines to FILE (default: stdout)")
    sub.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip lines whose name the server already has (Locate by Name) or an earlier line imported",
    )
    sub.add_argument("--activate", action="store_true", help='activate what lines without an "activate" field import')
    sub.add_argument(
        "--progress", action="store_true", help="show progress on stderr (the default when stderr is a terminal)"
    )
    sub.set_defaults(handler=run_client_command, action=_import, parser=sub)
