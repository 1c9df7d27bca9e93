"""Installing the commands: ``scripts/setup`` puts ``strongroom`` and ``kmip`` on PATH (without
replacing anything of those names that is not its own), and the package builds without
deprecation warnings."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup"
VENV_BIN = ROOT / ".venv" / "bin"
COMMANDS = ("strongroom", "kmip")



def link_only(env: dict[str, str], *prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, "bash", str(SETUP), "--link-only"], capture_output=True, text=True, env=env, timeout=60
    )


def environment(**extra: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "STRONGROOM_BIN_DIR"}
    return {**env, "PATH": "/usr/bin:/bin", **extra}


def test_setup_links_the_commands_into_the_bin_directory(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    done = link_only(environment(STRONGROOM_BIN_DIR=str(bin_dir)))
    assert done.returncode == 0, done.stderr
    for name in COMMANDS:
        link = bin_dir / name
        assert link.is_symlink() and Path(os.readlink(link)) == VENV_BIN / name
        assert f"linked {link} -> {VENV_BIN / name}" in done.stdout
    assert f"{bin_dir} is not on PATH" in done.stdout and ". .venv/bin/activate" in done.stdout
    version = subprocess.run([str(bin_dir / "kmip"), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "kmip (strongroom)" in version.stdout

    # Again, with the directory on PATH: nothing to do, nothing to say about PATH.
    again = link_only(environment(STRONGROOM_BIN_DIR=str(bin_dir), PATH=f"{bin_dir}:/usr/bin:/bin"))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("(already there)") == 2 and "not on PATH" not in again.stdout
    assert again.stderr == ""


def test_setup_never_replaces_another_command_of_the_same_name(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kmip").write_text("#!/bin/sh\necho another kmip\n")
    (bin_dir / "strongroom").symlink_to("/bin/true")
    done = link_only(environment(STRONGROOM_BIN_DIR=str(bin_dir)))
    assert done.returncode == 0, done.stderr
    assert (bin_dir / "kmip").read_text() == "#!/bin/sh\necho another kmip\n" and not (bin_dir / "kmip").is_symlink()
    assert os.readlink(bin_dir / "strongroom") == "/bin/true"
    assert f"warning: {bin_dir / 'kmip'} exists: left alone" in done.stderr
    assert f"warning: {bin_dir / 'strongroom'} exists (a link to /bin/true): left alone" in done.stderr
    assert "linked" not in done.stdout


def test_setup_replaces_a_dangling_link_of_a_checkout_that_is_gone(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kmip").symlink_to(tmp_path / "old-checkout" / ".venv" / "bin" / "kmip")
    (bin_dir / "strongroom").symlink_to(tmp_path / "elsewhere" / "strongroom")  # dangling, but not ours
    done = link_only(environment(STRONGROOM_BIN_DIR=str(bin_dir)))
    assert done.returncode == 0, done.stderr
    assert Path(os.readlink(bin_dir / "kmip")) == VENV_BIN / "kmip"
    assert Path(os.readlink(bin_dir / "strongroom")) == tmp_path / "elsewhere" / "strongroom"
    assert "left alone" in done.stderr


def test_setup_links_into_the_users_local_bin_when_not_root() -> None:
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("root without setpriv (util-linux): cannot run setup as a normal user")
        prefix = (setpriv, "--reuid=65534", "--regid=65534", "--clear-groups")  # nobody
    with tempfile.TemporaryDirectory() as scratch:  # not under pytest's tmp_path, which is 0700
        home = Path(scratch) / "home"
        home.mkdir()
        home.chmod(0o777)
        Path(scratch).chmod(0o755)
        done = link_only(environment(HOME=str(home)), *prefix)
        assert done.returncode == 0, done.stderr
        for name in COMMANDS:
            assert Path(os.readlink(home / ".local" / "bin" / name)) == VENV_BIN / name
        assert "~/.profile adds ~/.local/bin" in done.stdout


def test_package_metadata_builds_without_deprecation_warnings() -> None:
    """What ``pip install -e .`` prints while setuptools reads pyproject.toml (it warned about
    the table form of ``project.license``)."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "-e", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0 and "Would install" not in output:
        pytest.fail(f"pip could not prepare the build (no package index?): {output[-500:]}")
    assert re.search(r"(?i)deprecat|BuildBackendWarning|SetuptoolsWarning", output) is None, output
