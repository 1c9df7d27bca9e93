"""``strongroom policy check FILE...``, ``strongroom policy explain ...`` and
``strongroom credentials set|remove``: the access policy as an operator sees it."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from pathlib import Path

from ..config import ConfigError, load_config
from .credentials import CREDENTIALS_FILE, CredentialError, CredentialStore
from .loader import PolicyError, load_policies, load_policy

#: ``policy explain`` exits with this when the policy denies.
DENIED = 3


def add_policy_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    policy = commands.add_parser("policy", help="validate the access policy, or explain one of its decisions")
    actions = policy.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate policy files (or directories of *.toml)")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(run=_check)
    explain = actions.add_parser(
        "explain",
        help="print ALLOW or DENY for an operation and the rule that decided, changing nothing",
    )
    explain.add_argument("--data-dir", required=True, help="the server's data directory (its policy and store)")
    explain.add_argument("--identity", required=True, metavar="NAME", help="the client identity (certificate CN)")
    explain.add_argument("--tenant", metavar="T", help="act in this tenant instead of the one the policy maps to")
    explain.add_argument(
        "--role", action="append", metavar="R", help="act with these roles instead of the mapped ones (repeatable)"
    )
    explain.add_argument("--operation", required=True, metavar="OP", help='as the spec spells it: "Get", "Re-key"')
    explain.add_argument("--object", metavar="UID", help="the object the operation names")
    explain.set_defaults(run=_explain)

    credentials = commands.add_parser("credentials", help="KMIP Credential usernames and passwords (second factor)")
    actions = credentials.add_subparsers(dest="credentials_command", metavar="ACTION", required=True)
    for name, text in (("set", "set a username's password (read from stdin or the terminal)"), ("remove", "remove a username")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--data-dir", required=True)
        action.add_argument("--username", required=True)
        action.set_defaults(run=_credentials)


def _check(args: argparse.Namespace) -> int:
    status = 0
    for name in args.files:
        path = Path(name)
        try:
            policy = load_policies(path) if path.is_dir() else load_policy(path)
        except PolicyError as exc:
            print(f"strongroom: {exc}", file=sys.stderr)
            status = 1
            continue
        counts = [
            (len(policy.identities), "identity rules"),
            (len(policy.roles), "roles"),
            (len(policy.grants), "grants"),
            (len(policy.constraints), "constraints"),
            (len(policy.approvals), "approval rules"),
            (len(policy.operation_policies), "operation policies"),
        ]
        print(f"{name}: ok ({', '.join(f'{n} {what}' for n, what in counts)})")
    return status


def _explain(args: argparse.Namespace) -> int:
    # engine.access and engine.identity are light (no dispatcher, no handlers); the facts are
    # built exactly as the engine builds them for a decision.
    from ..engine.access import object_facts
    from ..engine.identity import ClientIdentity
    from ..storage.repository import Repository
    from . import server_policy
    from .facts import OPERATIONS

    if args.operation not in OPERATIONS:
        print(f"strongroom: {args.operation!r} is not a KMIP operation as the spec spells it", file=sys.stderr)
        return 1
    try:
        config = load_config(Path(args.data_dir))
        policy = server_policy(config)
    except (ConfigError, PolicyError) as exc:
        print(f"strongroom: {exc}", file=sys.stderr)
        return 1
    principal = policy.principal(ClientIdentity(args.identity))
    if args.role:
        unknown = sorted(set(args.role) - set(policy.roles))
        if unknown:
            print(f"strongroom: role(s) {', '.join(unknown)} not defined in the policy", file=sys.stderr)
            return 1
        principal = dataclasses.replace(principal, roles=frozenset(args.role))
    if args.tenant:
        principal = dataclasses.replace(principal, tenant=args.tenant)
    facts = None
    if args.object is not None:
        repository = Repository(config.storage.url)
        try:
            with repository.read() as session:
                record = session.get(args.object, attributes=True)
        finally:
            repository.dispose()
        if record is None:
            print(f"strongroom: no object {args.object!r} in the store", file=sys.stderr)
            return 1
        facts = object_facts(record, record.attributes)
    for line in policy.explain(principal, args.operation, facts):
        print(line)
    return 0 if policy.decide(principal, args.operation, facts).allowed else DENIED


def _credentials(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.data_dir))
    except ConfigError as exc:
        print(f"strongroom: {exc}", file=sys.stderr)
        return 1
    path = config.data_dir / CREDENTIALS_FILE
    try:
        store = CredentialStore.load(path)
        if args.credentials_command == "remove":
            if not store.remove(args.username):
                print(f"strongroom: no username {args.username!r} in {path}", file=sys.stderr)
                return 1
        else:
            password = getpass.getpass(f"password for {args.username}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
            store.set(args.username, password)
        store.save()
    except CredentialError as exc:
        print(f"strongroom: {exc}", file=sys.stderr)
        return 1
    print(f"{args.credentials_command}: {args.username} ({path}; a running server reads it at SIGHUP or restart)")
    return 0
