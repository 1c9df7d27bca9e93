"""deploy/: the systemd unit, the Containerfile and the container's entry point, read as the
tools that use them read them and checked against the code they start (the real CLI parser,
the listener's shutdown grace, the reload signal). The running server's side of them (the
readiness notification, the entry point initialising and serving) is in
tests/integration/test_deployment.py."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kmip_server import cli
from kmip_server.config import ListenerSettings
from kmip_server.custody.softhsm import SOFTHSM_MODULE_CANDIDATES
from kmip_server.transport import workers

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "strongroom.service"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
ENTRYPOINT = ROOT / "deploy" / "container-entrypoint.sh"

# ---- the systemd unit


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """A unit file as systemd reads it (systemd.syntax(7)): sections, KEY=VALUE lines, every
    assignment of a key kept in order (several are allowed, and an empty one resets a list),
    comments from # or ; at the start of a line, a backslash at the end continuing a line."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"assignment outside a section: {line!r}"
        key, equals, value = line.partition("=")
        assert equals, f"not an assignment: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


UNIT_SECTIONS = parse_unit(UNIT.read_text())
SERVICE = UNIT_SECTIONS["Service"]


def one(key: str) -> str:
    values = SERVICE.get(key)
    assert values is not None, f"[Service] has no {key}="
    assert len(values) == 1, f"[Service] {key}= is assigned {len(values)} times: {values}"
    return values[0]


def seconds(value: str) -> float:
    """A systemd time span as the unit writes them: 30, 30s, 2min, 1min 30s."""
    units = {"": 1.0, "s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value):
        total += float(number) * units[unit]
    return total


def test_unit_is_type_notify_from_the_main_process() -> None:
    assert one("Type") == "notify"
    # The supervisor sends READY=1 and STOPPING=1, and it is the main PID: ExecStart runs the
    # console script itself, not a shell that would be the main PID in its place.
    assert one("NotifyAccess") == "main"
    assert not one("ExecStart").startswith(("/bin/sh", "/usr/bin/env", "sh "))


def test_unit_runs_as_its_own_persistent_user() -> None:
    assert one("User") == "strongroom"
    assert one("Group") == "strongroom"
    assert SERVICE.get("DynamicUser", ["no"]) in (["no"], ["false"])
    assert one("StateDirectory") == "strongroom"
    assert one("StateDirectoryMode") == "0700"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ProtectSystem", "strict"),
        ("ProtectHome", "true"),
        ("PrivateTmp", "true"),
        ("PrivateDevices", "true"),
        ("NoNewPrivileges", "true"),
        ("LockPersonality", "true"),
        ("RestrictSUIDSGID", "true"),
        ("RestrictNamespaces", "true"),
        ("ProtectKernelTunables", "true"),
        ("ProtectKernelModules", "true"),
        ("ProtectControlGroups", "true"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0077"),
        ("Restart", "on-failure"),
    ],
)
def test_unit_hardening(key: str, value: str) -> None:
    assert one(key) == value


def test_unit_drops_every_capability_and_most_address_families() -> None:
    assert one("CapabilityBoundingSet") == ""
    assert one("AmbientCapabilities") == ""
    families = {family for value in SERVICE["RestrictAddressFamilies"] for family in value.split()}
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert SERVICE["SystemCallFilter"] == ["@system-service", "~@privileged"]


def test_unit_stop_outlasts_the_servers_own_graceful_stop() -> None:
    assert one("KillSignal") == "SIGTERM"
    # SIGTERM to the supervisor alone, which stops its workers itself.
    assert one("KillMode") == "mixed"
    # The supervisor kills workers that outlive the grace period by _KILL_MARGIN; systemd's
    # SIGKILL must come only after that, or a graceful stop is cut short.
    own_stop = ListenerSettings().shutdown_grace + workers._KILL_MARGIN
    assert seconds(one("TimeoutStopSec")) > own_stop


def test_unit_reload_is_the_signal_the_server_reloads_on() -> None:
    assert workers._RELOAD_SIGNAL == signal.SIGHUP
    assert one("ExecReload") == "/bin/kill -HUP $MAINPID"


def test_unit_file_limit_covers_many_workers() -> None:
    limit = int(one("LimitNOFILE"))
    assert limit >= 64 * ListenerSettings().max_connections + 64


def test_unit_exec_start_is_a_real_serve_command_line() -> None:
    argv = shlex.split(one("ExecStart"))
    assert argv[0] == "/opt/strongroom/.venv/bin/strongroom"
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[Path(argv[0]).name] == "kmip_server.cli:main"
    try:
        args = cli.build_parser().parse_args(argv[1:])
    except SystemExit as exc:  # argparse's way of refusing a subcommand or an option
        pytest.fail(f"`strongroom {' '.join(argv[1:])}` is refused by the CLI parser (exit {exc.code})")
    assert args.run is cli._cmd_serve
    # The data directory is the one StateDirectory= makes, owns and keeps writable.
    state = Path("/var/lib") / one("StateDirectory")
    assert Path(args.data_dir) == state
    assert Path(one("WorkingDirectory")) == state


def test_unit_install_section() -> None:
    assert UNIT_SECTIONS["Install"]["WantedBy"] == ["multi-user.target"]
    assert "network-online.target" in UNIT_SECTIONS["Unit"]["Wants"]


def _installable_unit(tmp_path: Path) -> Path:
    """The unit with its program replaced by this checkout's (all systemd-analyze needs that
    does not exist here is /opt/strongroom), under the same unit name."""
    program = Path(sys.executable).with_name("strongroom")
    assert program.is_file()
    text = UNIT.read_text()
    assert text.count("/opt/strongroom/.venv/bin/strongroom ") == 1
    path = tmp_path / UNIT.name
    path.write_text(text.replace("/opt/strongroom/.venv/bin/strongroom ", f"{program} "))
    return path


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze (Debian package systemd) is needed for this check"
    result = subprocess.run(
        [tool, "verify", "--man=no", str(_installable_unit(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # An unknown key or a bad value is only a warning (status 0): any output is a failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_analyze_security_rates_the_unit_well_hardened(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze (Debian package systemd) is needed for this check"
    # Exposure from 0.0 (locked down) to 10.0 (unprotected); the unit scores 1.5 ("OK").
    # Dropping a measure of the hardening above pushes it over 2.0.
    result = subprocess.run(
        [tool, "security", "--offline=true", "--threshold=20", str(_installable_unit(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---- the Containerfile


def containerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in CONTAINERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        name, _, arguments = line.partition(" ")
        instructions.append((name.upper(), arguments.strip()))
    assert not pending, "the Containerfile ends in a continuation line"
    return instructions


INSTRUCTIONS = containerfile_instructions()


def arguments_of(name: str) -> list[str]:
    return [arguments for instruction, arguments in INSTRUCTIONS if instruction == name]


def test_containerfile_is_debian_bookworm_based() -> None:
    (base,) = arguments_of("FROM")
    assert re.fullmatch(r"(docker\.io/library/)?(python:3\.11-slim-bookworm|debian:bookworm-slim)", base)
    installs = " ".join(arguments_of("RUN"))
    assert re.search(r"apt-get install [^&]*\bsofthsm2\b", installs)
    # Where Debian's softhsm2 puts the library, which `strongroom init` writes into the config.
    assert SOFTHSM_MODULE_CANDIDATES[0] == Path("/usr/lib/softhsm/libsofthsm2.so")


def test_containerfile_runs_as_a_user_it_creates_not_root() -> None:
    users = arguments_of("USER")
    assert users, "no USER: the server would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    names = [name for name, _ in INSTRUCTIONS]
    assert names.index("USER") > max(index for index, name in enumerate(names) if name == "RUN")
    assert re.search(rf"useradd [^&]*\b{user}\b", " ".join(arguments_of("RUN")))


def test_containerfile_data_volume_is_made_for_that_user_first() -> None:
    volumes = arguments_of("VOLUME")
    assert volumes and any("/var/lib/strongroom" in volume.split() for volume in volumes)
    # Made and chowned before VOLUME: later changes to a volume's directory are discarded,
    # and a new named volume copies its owner and mode from the image.
    names = [name for name, _ in INSTRUCTIONS]
    volume_at = names.index("VOLUME")
    made = [
        index
        for index, (name, arguments) in enumerate(INSTRUCTIONS)
        if name == "RUN" and re.search(r"install -d -o strongroom -g strongroom -m 0700 /var/lib/strongroom", arguments)
    ]
    assert made and made[0] < volume_at


def test_containerfile_exposes_the_kmip_port() -> None:
    ports = {port for arguments in arguments_of("EXPOSE") for port in arguments.split()}
    assert str(ListenerSettings().port) in ports


def test_containerfile_fetches_no_script_into_a_shell() -> None:
    text = CONTAINERFILE.read_text()
    assert not re.search(r"\b(curl|wget)\b[^\n]*\|\s*(sudo\s+)?(ba|da|z)?sh\b", text)
    assert not re.search(r"^\s*ADD\s+https?://", text, re.MULTILINE | re.IGNORECASE)


def test_containerfile_copies_what_exists_and_installs_a_real_extra() -> None:
    for arguments in arguments_of("COPY"):
        *sources, _ = [word for word in arguments.split() if not word.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the checkout (the build context)"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "postgres" in extras
    assert any('pip install --no-cache-dir "/tmp/strongroom-src[postgres]"' in run for run in arguments_of("RUN"))


def test_containerfile_entrypoint_is_the_script_on_the_venvs_path() -> None:
    (entrypoint,) = arguments_of("ENTRYPOINT")
    assert json.loads(entrypoint) == ["/usr/local/bin/strongroom-entrypoint"]
    assert "deploy/container-entrypoint.sh /usr/local/bin/strongroom-entrypoint" in arguments_of("COPY")
    assert any(env.startswith("PATH=/opt/strongroom/.venv/bin:") for env in arguments_of("ENV"))
    assert ENTRYPOINT.stat().st_mode & 0o111


# ---- the entry point's choices, with a stand-in for strongroom that records its arguments


def run_entrypoint(tmp_path: Path, data_dir: Path, *args: str, names: str = "") -> tuple[int, list[str], str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls"
    fake = bin_dir / "strongroom"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(log))}\n')
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STRONGROOM_DATA_DIR": str(data_dir)}
    if names:
        env["STRONGROOM_SERVER_NAMES"] = names
    result = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    calls = log.read_text().splitlines() if log.exists() else []
    return result.returncode, calls, result.stderr


def test_entrypoint_initialises_an_empty_directory_then_serves(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    status, calls, _ = run_entrypoint(tmp_path, data, "--workers", "3", names="kms.example.com 192.0.2.7")
    assert status == 0
    assert calls == [
        f"init --data-dir {data} --server-name kms.example.com --server-name 192.0.2.7",
        f"serve --data-dir {data} --host 0.0.0.0 --workers 3",
    ]


def test_entrypoint_serves_a_data_directory_without_initialising(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "strongroom.toml").write_text("")
    status, calls, _ = run_entrypoint(tmp_path, data)
    assert (status, calls) == (0, [f"serve --data-dir {data} --host 0.0.0.0"])


@pytest.mark.parametrize("stray", ["strongroom.db", ".hidden", "..dots"])
def test_entrypoint_refuses_a_directory_that_is_not_a_data_directory(tmp_path: Path, stray: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / stray).write_text("")
    status, calls, stderr = run_entrypoint(tmp_path, data)
    assert (status, calls) == (1, [])
    assert "not empty but has no strongroom.toml" in stderr


def test_entrypoint_runs_a_command_instead(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    status, calls, _ = run_entrypoint(tmp_path, data, "strongroom", "audit", "verify", "--data-dir", str(data))
    assert (status, calls) == (0, [f"audit verify --data-dir {data}"])
