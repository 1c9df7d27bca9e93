"""``strongroom approvals list|show|approve|deny --data-dir DIR --as NAME [ID]``.

An approver acts on the server's store and token directly (the person at the console of a
node), as the identity ``--as`` names: the policy must give that identity the approver role,
and the request's rule must name it; the requester never approves their own request (the
service checks both of the latter). Every approve and deny, refused ones included, is a
record of the audit trail, written in the transaction that records the vote.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..audit import AuditTrail
from ..config import ServerConfig, load_config
from ..custody import KeyCustody
from ..custody.opening import open_custody
from ..engine.identity import ClientIdentity
from ..storage.repository import Repository
from .desk import ApprovalDesk
from .service import ApprovalError, ApprovalRequest, ApprovalService

#: Exit status when the step was refused (not an approver, the requester, finished, unknown).
REFUSED = 3


def add_approvals_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    approvals = commands.add_parser("approvals", help="list, show, approve or deny requests held for M-of-N approval")
    actions = approvals.add_subparsers(dest="approvals_command", metavar="ACTION", required=True)
    for name, help_text, with_id in (
        ("list", "the pending requests NAME made or may approve", False),
        ("show", "one request", True),
        ("approve", "approve a request as NAME", True),
        ("deny", "deny a request as NAME (it will not run)", True),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--data-dir", required=True, help="the server's data directory")
        action.add_argument("--as", dest="identity", required=True, metavar="NAME", help="the identity acting")
        if with_id:
            action.add_argument(
                "request_id", metavar="ID", help="the request (the Asynchronous Correlation Value in hex)"
            )
        action.add_argument("--json", action="store_true", help="print JSON instead of text")
        if name == "list":
            action.add_argument("--all", action="store_true", help="finished requests too")
        action.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from ..engine.app import policy_from_config

    config = load_config(Path(args.data_dir))
    with _opened(config) as (repository, custody):
        desk = ApprovalDesk(
            repository, ApprovalService(custody), policy_from_config(config), AuditTrail(custody, "console")
        )
        identity = ClientIdentity(args.identity)
        try:
            found = desk.act(
                identity,
                args.approvals_command,
                getattr(args, "request_id", None),
                finished=getattr(args, "all", False),
            )
        except ApprovalError as exc:
            print(f"strongroom: {exc.message}", file=sys.stderr)
            return REFUSED
    _print(found, args.json)
    return 0


@contextmanager
def _opened(config: ServerConfig) -> Iterator[tuple[Repository, KeyCustody]]:
    custody = open_custody(config)
    repository = Repository(config.storage.url)
    try:
        yield repository, custody
    finally:
        repository.dispose()
        custody.close()


def _print(requests: list[ApprovalRequest], as_json: bool) -> None:
    if as_json:
        print(json.dumps([r.to_json() for r in requests], indent=2))
        return
    if not requests:
        print("no requests")
    for r in requests:
        print(_describe(r))


def _describe(r: ApprovalRequest) -> str:
    lines = [
        f"request {r.id}: {r.operation} of {', '.join(r.object_ids) or '(no object)'} by {r.requester} "
        f"(tenant {r.tenant}), {r.status}",
        f"  rule {r.rule!r}: {r.required} of {', '.join(r.approvers)}; approved by {', '.join(r.approved_by) or 'nobody yet'}",
        f"  made {_when(r.created)}, expires {_when(r.expires)}",
    ]
    if r.denied_by:
        lines.append(f"  denied by {r.denied_by}")
    if r.outcome:
        lines.append(f"  outcome: {r.outcome}")
    return "\n".join(lines)


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


__all__: list[Any] = ["add_approvals_commands", "REFUSED"]
