"""Replay the OASIS profile test cases in tests/vectors/oasis against a fresh Strongroom server.

    .venv/bin/python tests/conformance/run.py [--versions 1.3,1.4,2.0,2.1] [--profiles BL,SKLC,...]
        [--table] [--verbose] [FILE ...]

Starts ``strongroom serve`` (SQLite, SoftHSM2, 2 workers) on a temporary data dir, gives every
conversation an identity of its own (a client certificate from the data dir's CA, so no file can
see another's objects; the files that continue another, ``kmip_client.replay.CONTINUES``, are
the client of the file they continue and get none), and runs ``kmip replay`` (the real command)
over the files. Prints one PASS/FAIL line per file, then a table of passed/total per profile and
KMIP version.

The profiles are the symmetric-key ones issue 4 asks for, the Self-Encrypting Drive, Suite B
and AES XTS ones. MSGENC-* (the HTTPS, JSON and XML message encodings) run over the server's
KMIP-over-HTTPS listener with TTLV, JSON and XML bodies; the rest over binary TTLV. The server
answers the test-harness operation Interop (``--test-harness``), which the BL-M files begin and
end with.
"""

from __future__ import annotations

import argparse
import collections
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from kmip_client.replay import case_name, predecessor  # noqa: E402
from kmip_server.pki import issue_client_certificate, load_issued, write_issued  # noqa: E402
from tests.support.server_process import free_port, running_server, strongroom_init  # noqa: E402

VECTORS = _ROOT / "tests" / "vectors" / "oasis"
PROFILES = (
    "BL-M",
    "SKLC-M",
    "SKLC-O",
    "SKFF-M",
    "OMOS-M",
    "OMOS-O",
    "TL-M",
    "QS-M",
    "MSGENC-HTTPS-M",
    "MSGENC-JSON-M",
    "MSGENC-XML-M",
    "SASED-M",
    "SUITEB_128-M",
    "SUITEB_192-M",
    "AX-M",
    "CS-BC-M",
    "CS-AC-M",
    "CS-RNG-M",
    "CS-RNG-O",
    "PKCS11-M",
    "AKLC-M",
    "AKLC-O",
)
#: The message-encoding profiles run over KMIP over HTTPS, each in its body encoding.
ENCODINGS = {"MSGENC-HTTPS-M": "ttlv", "MSGENC-JSON-M": "json", "MSGENC-XML-M": "xml"}
VERSIONS = ("1.3", "1.4", "2.0", "2.1")
#: The files that show a server configured otherwise than by default, and the ``[crypto]``
#: setting that makes Strongroom that server. The four CS-RNG-O files send one seed and show
#: four behaviours KMIP allows: all of it taken (O-1, the default), 16 bytes taken, none taken,
#: RNG Seed refused (kmip_server/operations/crypto/rng.py). Each runs on a server so set.
SERVER_SETTINGS = {
    "CS-RNG-O-2": "rng_seed_max_bytes = 16",
    "CS-RNG-O-3": 'rng_seed = "ignore"',
    "CS-RNG-O-4": 'rng_seed = "refuse"',
}
_RESULT = re.compile(r"^(PASS|FAIL) (.+?\.xml)")


def profile_of(path: Path) -> str:
    """``SKLC-M-1-14.xml`` → ``SKLC-M``; ``CS-BC-M-GCM-1-14.xml`` and ``CS-BC-M-4-12-3DES-13.xml``
    → ``CS-BC-M``: the profile is the name up to its first Mandatory/Optional part."""
    match = re.match(r"(.+?-[MO])(?:-|$)", path.stem)
    return match.group(1) if match else path.stem


def case_files(versions: Iterable[str], profiles: Iterable[str]) -> list[Path]:
    wanted = set(profiles)
    files = []
    for version in versions:
        for path in sorted((VECTORS / f"v{version}").rglob("*.xml")):
            if profile_of(path) in wanted:
                files.append(path)
    return files


def identities_for(files: Iterable[Path]) -> list[Path]:
    """The files whose names the client identities take: one per conversation, the file it
    starts with (a continuation runs as the client of the file it continues, which is that)."""
    return sorted({predecessor(path) for path in files})


def issue_identities(data_dir: Path, files: list[Path], out: Path) -> None:
    """A client certificate per conversation of ``files``, named after its first file, from the
    data dir's CA."""
    ca = load_issued(data_dir / "pki" / "ca.crt", data_dir / "pki" / "ca.key")
    out.mkdir(parents=True, exist_ok=True)
    run = f"{time.time_ns():x}"[-6:]  # a fresh name on every run: no objects left from an earlier one
    for path in identities_for(files):
        issued = issue_client_certificate(ca, f"conformance-{path.stem}-{run}")
        write_issued(issued, out / f"{path.stem}.crt", out / f"{path.stem}.key", overwrite=True)


def replay(target: list[str], ca: Path, identities: Path, files: list[Path], verbose: bool) -> dict[Path, str]:
    """Run ``kmip replay`` over ``files`` at ``target`` (its --server or --url options); the
    outcome line of each file by path."""
    command = [
        str(Path(sys.executable).with_name("kmip")),
        "replay",
        *target,
        "--ca",
        str(ca),
        "--cert-dir",
        str(identities),
        *(["--verbose"] if verbose else []),
        *map(str, files),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if verbose:
        sys.stderr.write(completed.stderr)
    outcomes: dict[Path, str] = {}
    for line in completed.stdout.splitlines():
        match = _RESULT.match(line)
        if match:
            outcomes[Path(match.group(2))] = line
    missing = [f for f in files if f not in outcomes]
    if missing:
        raise RuntimeError(
            f"kmip replay gave no result for {len(missing)} files:\n{completed.stdout}\n{completed.stderr}"
        )
    return outcomes


def table(outcomes: dict[Path, str]) -> str:
    counts: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0])
    for path, line in outcomes.items():
        version = path.parts[-3].lstrip("v")
        cell = counts[(profile_of(path), version)]
        cell[1] += 1
        cell[0] += line.startswith("PASS")
    versions = sorted({v for _, v in counts})
    rows = ["| profile | " + " | ".join(f"KMIP {v}" for v in versions) + " |", "|---|" + "---:|" * len(versions)]
    for profile in PROFILES:
        cells = [
            f"{counts[(profile, v)][0]}/{counts[(profile, v)][1]}" if (profile, v) in counts else "–" for v in versions
        ]
        if any(c != "–" for c in cells):
            rows.append(f"| {profile} | " + " | ".join(cells) + " |")
    passed = sum(c[0] for c in counts.values())
    total = sum(c[1] for c in counts.values())
    rows.append(f"\n{passed} of {total} files pass")
    return "\n".join(rows)


def run(files: list[Path], verbose: bool = False) -> dict[Path, str]:
    """A fresh server, an identity per file, the replay: the outcome line of each file. The
    files of :data:`SERVER_SETTINGS` run on the same data directory served with their setting."""
    with tempfile.TemporaryDirectory(prefix="strongroom-conformance-") as tmp:
        data_dir = Path(tmp) / "data"
        strongroom_init(data_dir)
        identities = Path(tmp) / "identities"
        issue_identities(data_dir, files, identities)
        by_setting: dict[str, list[Path]] = collections.defaultdict(list)
        for path in files:
            by_setting[SERVER_SETTINGS.get(case_name(path), "")].append(path)
        config = data_dir / "strongroom.toml"
        default = config.read_text()
        outcomes: dict[Path, str] = {}
        for setting, group in by_setting.items():
            config.write_text(_with_crypto_setting(default, setting) if setting else default)
            outcomes.update(_serve_and_replay(data_dir, identities, group, verbose))
        return outcomes


def _with_crypto_setting(config: str, setting: str) -> str:
    """The configuration text with ``setting`` (``key = value``) in its [crypto] section."""
    key = setting.split("=")[0].strip()
    lines = [line for line in config.splitlines() if not line.startswith(f"{key} =")]
    at = lines.index("[crypto]") + 1
    return "\n".join([*lines[:at], setting, *lines[at:]]) + "\n"


def _serve_and_replay(data_dir: Path, identities: Path, files: list[Path], verbose: bool) -> dict[Path, str]:
    port, https_port = free_port(), free_port()
    ca = data_dir / "pki" / "ca.crt"
    extra = ["--log-level", "WARNING", "--https-port", str(https_port), "--test-harness"]
    outcomes: dict[Path, str] = {}
    with running_server(data_dir, port, extra_args=extra):
        groups: dict[str, list[Path]] = collections.defaultdict(list)
        for path in files:
            groups[ENCODINGS.get(profile_of(path), "")].append(path)
        for encoding, group in groups.items():
            if encoding:
                target = ["--url", f"https://127.0.0.1:{https_port}/kmip", "--encoding", encoding]
            else:
                target = ["--server", f"127.0.0.1:{port}"]
            outcomes.update(replay(target, ca, identities, group, verbose))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default=",".join(VERSIONS))
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--table", action="store_true", help="print the profile × version table")
    parser.add_argument("--verbose", action="store_true", help="print the differing response of each FAIL")
    parser.add_argument("files", nargs="*", type=Path, help="these files instead of the profiles")
    args = parser.parse_args(argv)
    files = [f.resolve() for f in args.files] or case_files(args.versions.split(","), args.profiles.split(","))
    outcomes = run(files, args.verbose)
    for path in files:
        print(outcomes[path].replace(str(VECTORS) + "/", ""))
    if args.table:
        print()
        print(table(outcomes))
    return 0 if all(line.startswith("PASS") for line in outcomes.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
