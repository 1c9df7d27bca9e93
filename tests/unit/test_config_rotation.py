"""The ``[rotation]`` section of strongroom.toml: defaults, values, refusals, the file `init` writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kmip_server.config import ConfigError, load_config, render_default_config
from kmip_server.rotation_settings import RotationSettings

from .test_config import MINIMAL, write_config


def test_the_rotation_section_defaults_and_values(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path, MINIMAL)).rotation == RotationSettings(
        enabled=True, check_seconds=60, batch_size=50
    )
    text = MINIMAL + "\n[rotation]\nenabled = false\ncheck_seconds = 5\nbatch_size = 7\n"
    assert load_config(write_config(tmp_path, text)).rotation == RotationSettings(
        enabled=False, check_seconds=5, batch_size=7
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("check_seconds = 0", "rotation.check_seconds: must be from 1 to 86400, not 0"),
        ("check_seconds = 1.5", "rotation.check_seconds: must be an integer, not a number (1.5)"),
        ("batch_size = 0", "rotation.batch_size: must be from 1 to 10000, not 0"),
        ('enabled = "yes"', "rotation.enabled: must be true or false"),
        ("check_every = 5", "rotation.check_every: unknown key (known keys: enabled, check_seconds, batch_size)"),
    ],
)
def test_the_rotation_section_refuses(tmp_path: Path, line: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_config(tmp_path, MINIMAL + f"\n[rotation]\n{line}\n"))
    assert expected in str(caught.value)


def test_the_default_file_has_the_rotation_defaults(tmp_path: Path) -> None:
    text = render_default_config()
    section = text[text.index("\n[rotation]\n") :]
    assert "check_seconds = 60\n" in section and "batch_size = 50\n" in section and "enabled = true\n" in section
    assert "# How often to look for keys that are due." in section
    assert load_config(write_config(tmp_path, text)).rotation == RotationSettings()
