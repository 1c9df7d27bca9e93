"""A data directory's strongroom.toml names its own files even when copied or moved (issue 14):
relative names as `init` writes them, and the absolute names older versions wrote."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from kmip_server.config import CONFIG_FILE_NAME, ConfigError, load_config, render_default_config

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def make_data_dir(data_dir: Path, url: str | None = None, pin_file: str = "hsm/user.pin") -> Path:
    """A data directory with the default configuration (its URL and PIN file replaceable)."""
    data_dir.mkdir(parents=True)
    text = render_default_config(module=Path(MODULE))
    if url is not None:
        text = text.replace('url = "sqlite:///strongroom.db"', f'url = "{url}"')
    text = text.replace('pin_file = "hsm/user.pin"', f'pin_file = "{pin_file}"')
    (data_dir / CONFIG_FILE_NAME).write_text(text)
    (data_dir / "strongroom.db").write_bytes(b"")
    (data_dir / "hsm").mkdir()
    (data_dir / "hsm/user.pin").write_text("a-pin-of-this-directory\n")
    return data_dir


def database(config_url: str) -> str:
    from sqlalchemy.engine import make_url

    return str(make_url(config_url).database)


def test_the_default_configuration_names_nothing_absolutely(tmp_path: Path) -> None:
    data_dir = make_data_dir(tmp_path / "data")
    text = (data_dir / CONFIG_FILE_NAME).read_text()
    assert str(data_dir) not in text and str(tmp_path) not in text
    assert '\nurl = "sqlite:///strongroom.db"\n' in text
    moved = tmp_path / "moved"
    data_dir.rename(moved)
    assert database(load_config(moved).storage.url) == str(moved / "strongroom.db")


def test_an_old_absolute_path_into_the_directory_copied_from_is_taken_from_the_copy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = tmp_path / "a"
    make_data_dir(original, url=f"sqlite:///{original}/strongroom.db", pin_file=f"{original}/hsm/user.pin")
    config = load_config(original)  # in place, the old names are this directory's own: no warning
    assert database(config.storage.url) == str(original / "strongroom.db")
    assert config.custody.pin_file == original / "hsm/user.pin"

    copy = tmp_path / "b"
    shutil.copytree(original, copy)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="strongroom.config"):
        config = load_config(copy)
    assert database(config.storage.url) == str(copy / "strongroom.db")
    assert config.custody.pin_file == copy / "hsm/user.pin"
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        f"storage.url: {original}/strongroom.db is inside another data directory ({original})" in message
        and "'sqlite:///strongroom.db'" in message
        for message in messages
    ), messages
    assert any(f"custody.pin_file: {original}/hsm/user.pin is inside another data directory" in m for m in messages)


def test_an_old_absolute_path_into_another_data_dir_is_refused_when_the_copy_lacks_the_file(tmp_path: Path) -> None:
    original = make_data_dir(tmp_path / "a")
    copy = tmp_path / "b"
    make_data_dir(copy, url=f"sqlite:///{original}/keys/strongroom.db")
    (original / "keys").mkdir()
    with pytest.raises(ConfigError) as raised:
        load_config(copy)
    message = str(raised.value)
    assert message.startswith(f"{copy / CONFIG_FILE_NAME}: storage.url: {original}/keys/strongroom.db is inside ")
    assert "this one has no keys/strongroom.db of its own" in message
    assert "'sqlite:///keys/strongroom.db'" in message


def test_an_old_database_path_of_a_moved_directory_is_taken_from_where_it_is_now(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = tmp_path / "a"
    make_data_dir(original, url=f"sqlite:///{original}/strongroom.db")
    moved = tmp_path / "c"
    original.rename(moved)
    with caplog.at_level(logging.WARNING, logger="strongroom.config"):
        config = load_config(moved)
    assert database(config.storage.url) == str(moved / "strongroom.db")
    assert any("does not exist, nor does its directory" in record.getMessage() for record in caplog.records)

    # Only init's own name is taken so: a database of another name that is gone stays named.
    elsewhere = tmp_path / "gone" / "keys.db"
    (moved / CONFIG_FILE_NAME).write_text(
        (moved / CONFIG_FILE_NAME).read_text().replace(f"sqlite:///{original}/strongroom.db", f"sqlite:///{elsewhere}")
    )
    (moved / "keys.db").write_bytes(b"")
    assert database(load_config(moved).storage.url) == str(elsewhere)
