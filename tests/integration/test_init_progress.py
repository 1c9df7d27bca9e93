"""``strongroom init`` names each step on stderr as it begins when stderr is a terminal (or with
``--progress``), and says nothing more when piped; its report on stdout is the same either way.
The installed command, a real SoftHSM2 token and SQLite database."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.server_process import strongroom_command
from tests.support.terminal import run_on_terminal

STEPS = [
    "strongroom: [1/5] configuration (strongroom.toml)...",
    "strongroom: [2/5] PKI: the CA and the server certificate...",
    "strongroom: [3/5] PKI: the 'admin' client identity...",
    "strongroom: [4/5] the SoftHSM2 token and its master key...",
    "strongroom: [5/5] the database schema...",
]


def init(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [*strongroom_command(), "init", "--data-dir", str(data_dir), *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_init_shows_its_steps_on_a_terminal_and_stays_quiet_when_piped(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # stderr on a terminal, stdout into a file: the steps on the one, the report on the other.
    run = run_on_terminal([*strongroom_command(), "init", "--data-dir", str(data_dir)], stdout_too=False)
    assert run.status == 0, run.terminal + run.stdout
    assert run.visible_lines() == STEPS
    assert run.stdout.startswith(f"strongroom: data directory {data_dir.resolve()} (created)\n")
    assert "[1/5]" not in run.stdout
    assert (data_dir / "strongroom.db").is_file()

    # Piped, a second run (which keeps everything) prints its report alone.
    piped = init(data_dir)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    assert "  kept  strongroom.toml  configuration (--force-config rewrites it)" in piped.stdout

    # --progress shows the steps in a pipe too, and changes nothing on stdout.
    forced = init(data_dir, "--progress")
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr.splitlines() == STEPS
    assert forced.stdout == piped.stdout
