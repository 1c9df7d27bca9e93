"""``strongroom byok export --data-dir DIR --provider aws|azure|gcp --key UID --wrapping-key FILE
--algorithm NAME [--kek-id KID] --out FILE [--as NAME] [--force]``.

Opens the data directory's engine in this process (its token and store, as a server worker
does; the server may be running) and exports the key through it as the identity ``--as`` names,
by default the first of ``[policy] admin_identities``: see :mod:`.export`. The access policy,
approval rules and the audit trail apply as to a KMIP client's Get of the key wrapped.

Exit status: 0 written; 1 refused or failed (one ``strongroom: ...`` line); 4 held for approval
(the request id is printed; run the same command again once it is approved).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from kmip_client.protocol.errors import KmipError

from ..cli_init import CliError
from ..config import load_config
from ..engine.identity import ClientIdentity
from ..engine.items import reason_title
from ..pki import write_file_atomically
from .methods import PROVIDERS, MethodError, method_for, names
from .packaging import check_kek_id, import_command, package

#: Exit status when the export waits for M-of-N approval.
AWAITING_APPROVAL = 4


def add_byok_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    byok = commands.add_parser(
        "byok",
        help="bring your own key: export a key wrapped for AWS KMS, Azure Key Vault or Google Cloud KMS import",
        description="Bring your own key to a cloud KMS.",
    )
    actions = byok.add_subparsers(dest="byok_command", metavar="ACTION", required=True)
    methods = "; ".join(f"{provider}: {', '.join(names(provider))}" for provider in PROVIDERS)
    export = actions.add_parser(
        "export",
        help="write a key wrapped under the provider's import public key, in the provider's import format",
        description="Export key UID wrapped under the cloud provider's wrapping public key, as the file the "
        "provider imports: AWS KMS and Google Cloud KMS the wrapped bytes, Azure a .byok JSON file. The key "
        "never leaves in plaintext; the export is a KMIP Get of the key with a Key Wrapping Specification, "
        "through this data directory's engine, so the access policy, M-of-N approval and the audit trail "
        "apply. Exit status 0 written, 1 refused, 4 awaiting approval (run the same command again once "
        f"approved). Methods: {methods}.",
    )
    export.add_argument("--data-dir", required=True, metavar="DIR", help="the server's data directory")
    export.add_argument("--provider", required=True, choices=PROVIDERS, help="the cloud KMS to import into")
    export.add_argument("--key", required=True, metavar="UID", help="the key to export (its Unique Identifier)")
    export.add_argument(
        "--wrapping-key",
        required=True,
        metavar="FILE",
        help="the provider's RSA wrapping public key: PEM, DER, or base64 DER (SubjectPublicKeyInfo)",
    )
    export.add_argument(
        "--algorithm",
        metavar="NAME",
        help="the wrapping method in the provider's spelling (RSA_AES_KEY_WRAP_SHA_256, rsa-oaep-3072-sha256-aes-256, "
        "...); for azure CKM_RSA_AES_KEY_WRAP, the default",
    )
    export.add_argument(
        "--kek-id",
        metavar="KID",
        help="azure only: the key-exchange key's identifier, https://VAULT.vault.azure.net/keys/NAME/VERSION",
    )
    export.add_argument("--out", required=True, metavar="FILE", help="the file to write (mode 0600)")
    export.add_argument(
        "--as",
        dest="identity",
        metavar="NAME",
        help="the identity to export as (default: the first of [policy] admin_identities)",
    )
    export.add_argument("--force", action="store_true", help="replace FILE if it exists")
    export.set_defaults(run=_run_export)


def read_wrapping_key(path: Path) -> Any:
    """The public key in ``path``: PEM, DER, or the base64 of DER (what ``aws kms
    get-parameters-for-import --query PublicKey --output text`` prints)."""
    data = path.read_bytes()
    candidates: list[tuple[Callable[[bytes], Any], bytes]] = [(load_pem_public_key, data), (load_der_public_key, data)]
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append((load_der_public_key, base64.b64decode(b"".join(data.split()), validate=True)))
    for load, encoded in candidates:
        with contextlib.suppress(ValueError, TypeError, UnsupportedAlgorithm):
            return load(encoded)
    raise CliError(f"--wrapping-key {path} is not a public key (PEM, DER or base64 DER SubjectPublicKeyInfo)")


def _run_export(args: argparse.Namespace) -> int:
    from ..engine.app import build_dispatcher
    from .export import EngineClient, Pending, export

    config = load_config(Path(args.data_dir))
    try:
        method = method_for(args.provider, args.algorithm)
        if method.provider == "azure":
            kek_id = check_kek_id(args.kek_id)
        elif args.kek_id is not None:
            raise MethodError(f"--kek-id is for azure; {method.provider} names its wrapping key by the file alone")
        else:
            kek_id = None
        public = read_wrapping_key(Path(args.wrapping_key))
        method.check_wrapping_key(public)
    except MethodError as exc:
        raise CliError(str(exc)) from None
    out = Path(args.out)
    if out.exists() and not args.force:
        raise CliError(f"{out} already exists (--force replaces it)")
    identity = args.identity or next(iter(config.policy.admin_identities), None)
    if not identity:
        raise CliError("--as NAME is needed: the configuration names no [policy] admin_identities")

    dispatcher = build_dispatcher(config)
    try:
        result = export(EngineClient(dispatcher, ClientIdentity(identity)), method, args.key, public)
    except MethodError as exc:
        raise CliError(str(exc)) from None
    except KmipError as exc:  # the engine's answer: its message names no key material
        raise CliError(
            f"the export of key {args.key!r} was refused: {exc.message} ({reason_title(exc.reason)})"
        ) from None
    finally:
        dispatcher.close()

    if isinstance(result, Pending):
        request = result.request
        print(
            f"strongroom: the export of key {args.key!r} awaits approval: request {request.id}, "
            f"{request.required} approval(s) from {', '.join(request.approvers)} (policy rule {request.rule!r}; "
            f"approved by {', '.join(request.approved_by) or 'nobody yet'}). Approvers: strongroom approvals "
            f"approve --data-dir DIR --as NAME {request.id}; then run this command again.",
            file=sys.stderr,
        )
        return AWAITING_APPROVAL
    write_file_atomically(out, package(method, result.wrapped, kek_id), 0o600, overwrite=args.force)
    kind = "private key (PKCS#8)" if result.object_type.name == "PRIVATE_KEY" else "symmetric key (raw)"
    print(
        f"wrote {out}: {kind} {args.key} for {method.provider} {method.name}, wrapped under the "
        f"RSA-{result.wrapping_bits} key sha256:{result.wrapping_fingerprint} (object {result.wrapping_uid})"
    )
    print(f"import it with: {import_command(method, str(out))}")
    return 0
