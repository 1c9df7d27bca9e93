"""Loading and checking strongroom.toml, reading the token PIN, and the file `init` writes."""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from pathlib import Path

import pytest

from kmip_server.config import (
    CONFIG_FILE_NAME,
    ConfigError,
    CustodySettings,
    ListenerSettings,
    PolicySettings,
    load_config,
    read_pin,
    render_default_config,
)

MODULE = "/usr/lib/softhsm/libsofthsm2.so"

MINIMAL = f"""
[tls]
certificate = "pki/server.crt"
private_key = "pki/server.key"
client_ca = "pki/ca.crt"

[custody]
module = "{MODULE}"
token_label = "strongroom"
pin_file = "hsm/user.pin"

[storage]
url = "sqlite:///strongroom.db"
"""

FULL = f"""
log_level = "debug"

[listener]
host = "0.0.0.0"
port = 15696
workers = 3
max_message_size = 65536
idle_timeout = 30
max_connections = 100
handshake_timeout = 2.5

[tls]
certificate = "/etc/strongroom/server.crt"
private_key = "pki/../pki/server.key"
client_ca = ["pki/ca.crt", "/etc/strongroom/partner-ca.crt"]
identity_from = "san-email"

[custody]
module = "{MODULE}"
token_label = "prod"
master_key_label = "mk-2024"
pin_env = "STRONGROOM_PIN"

[storage]
url = "postgresql+psycopg://strongroom@db.example.com/strongroom"

[policy]
admin_identities = ["alice", "bob"]
policy_file = "policy.toml"
"""


def write_config(data_dir: Path, text: str) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / CONFIG_FILE_NAME).write_text(text, encoding="utf-8")
    return data_dir


def config_error(data_dir: Path, text: str) -> str:
    write_config(data_dir, text)
    with pytest.raises(ConfigError) as caught:
        load_config(data_dir)
    return str(caught.value)


def replace_line(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


# ---- load_config: good files


def test_minimal_file_gets_defaults_and_paths_relative_to_the_data_dir(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path / "data", MINIMAL))
    data_dir = (tmp_path / "data").resolve()
    assert config.data_dir == data_dir
    assert config.listener == ListenerSettings()
    assert config.tls.certificate == data_dir / "pki/server.crt"
    assert config.tls.private_key == data_dir / "pki/server.key"
    assert config.tls.client_ca == (data_dir / "pki/ca.crt",)
    assert config.tls.identity_from == "cn"
    assert config.custody == CustodySettings(
        module=Path(MODULE),
        token_label="strongroom",
        master_key_label="strongroom-master",
        pin_file=data_dir / "hsm/user.pin",
    )
    # A relative SQLite path is a file in the data directory, whatever the working directory.
    assert config.storage.url == f"sqlite:///{data_dir}/strongroom.db"
    assert config.policy == PolicySettings()
    assert config.log_level == "INFO"
    assert config.test_harness is False  # Interop is never answered unless asked for


def test_test_harness_is_a_top_level_switch(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path, "test_harness = true\n" + MINIMAL)).test_harness is True


def test_full_file(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, FULL))
    data_dir = tmp_path.resolve()
    assert config.log_level == "DEBUG"
    assert config.listener == ListenerSettings(
        host="0.0.0.0",
        port=15696,
        workers=3,
        max_message_size=65536,
        idle_timeout=30.0,
        max_connections=100,
        handshake_timeout=2.5,
    )
    assert isinstance(config.listener.idle_timeout, float)
    assert config.tls.certificate == Path("/etc/strongroom/server.crt")
    assert config.tls.private_key == data_dir / "pki/server.key"  # normalised
    assert config.tls.client_ca == (data_dir / "pki/ca.crt", Path("/etc/strongroom/partner-ca.crt"))
    assert config.tls.identity_from == "san-email"
    assert config.custody.pin_env == "STRONGROOM_PIN"
    assert config.custody.pin_file is None
    assert config.custody.softhsm2_conf is None
    assert config.custody.master_key_label == "mk-2024"
    assert config.storage.url == "postgresql+psycopg://strongroom@db.example.com/strongroom"
    assert config.policy == PolicySettings(admin_identities=("alice", "bob"), policy_file=data_dir / "policy.toml")


def test_every_listener_field_is_configurable(tmp_path: Path) -> None:
    # Fields another part of the server adds to ListenerSettings are read without changes here.
    lines = ["[listener]"]
    expected = {}
    for field in dataclasses.fields(ListenerSettings):
        default = field.default
        if isinstance(default, str):
            value: object = "::1"
            lines.append(f'{field.name} = "::1"')
        elif isinstance(default, int) and field.name != "port":
            value = default + 1
            lines.append(f"{field.name} = {value}")
        elif isinstance(default, float):
            value = default / 2 + 0.05  # inside every float's bounds
            lines.append(f"{field.name} = {value}")
        else:
            value = 5697
            lines.append(f"{field.name} = {value}")
        expected[field.name] = value
    config = load_config(write_config(tmp_path, MINIMAL + "\n" + "\n".join(lines) + "\n"))
    assert dataclasses.asdict(config.listener) == expected


def test_absolute_sqlite_path_and_home_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = replace_line(MINIMAL, 'url = "sqlite:///strongroom.db"', 'url = "sqlite:////var/lib/x/s.db"')
    text = replace_line(text, 'certificate = "pki/server.crt"', 'certificate = "~/server.crt"')
    config = load_config(write_config(tmp_path / "data", text))
    assert config.storage.url == "sqlite:////var/lib/x/s.db"
    assert config.tls.certificate == tmp_path / "home" / "server.crt"


def test_read_records_wait_for_the_disk_only_when_asked(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path / "a", MINIMAL)).storage.sync_read_records is False
    text = replace_line(
        MINIMAL, 'url = "sqlite:///strongroom.db"', 'url = "sqlite:///strongroom.db"\nsync_read_records = true'
    )
    assert load_config(write_config(tmp_path / "b", text)).storage.sync_read_records is True
    wrong = replace_line(
        MINIMAL, 'url = "sqlite:///strongroom.db"', 'url = "sqlite:///strongroom.db"\nsync_read_records = 1'
    )
    with pytest.raises(ConfigError, match="storage.sync_read_records: must be true or false"):
        load_config(write_config(tmp_path / "c", wrong))


# ---- load_config: errors name the key


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no configuration file .*strongroom\.toml.*strongroom init"):
        load_config(tmp_path)


def test_invalid_toml(tmp_path: Path) -> None:
    assert "not valid TOML" in config_error(tmp_path, MINIMAL + "\n[listener\n")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            'token_label = "strongroom"',
            'token_labl = "strongroom"',
            "custody.token_labl: unknown key (did you mean 'token_label'?)",
        ),
        ("[storage]", '[storage]\nurl_ = "x"', "storage.url_: unknown key"),
        ("[tls]", 'log_levle = "INFO"\n[tls]', "log_levle: unknown key or section (did you mean 'log_level'?)"),
        ("[storage]", "[strage]\n[storage]", "strage: unknown key or section (did you mean 'storage'?)"),
    ],
)
def test_unknown_keys_are_errors(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in config_error(tmp_path, replace_line(MINIMAL, old, new))


@pytest.mark.parametrize(
    ("listener", "expected"),
    [
        ("port = 0", "listener.port: must be from 1 to 65535, not 0"),
        ("port = 70000", "listener.port: must be from 1 to 65535, not 70000"),
        ('port = "5696"', "listener.port: must be an integer, not a string ('5696')"),
        ("port = true", "listener.port: must be an integer, not a boolean (True)"),
        ("workers = 1.5", "listener.workers: must be an integer, not a number (1.5)"),
        ("workers = -1", "listener.workers: must be from 0 to 4096, not -1"),
        ("idle_timeout = 0", "listener.idle_timeout: must be greater than 0"),
        ('idle_timeout = "5m"', "listener.idle_timeout: must be a number, not a string"),
        ("max_message_size = 100", "listener.max_message_size: must be from 1024"),
        ("max_connections = 0", "listener.max_connections: must be at least 1, not 0"),
        ("host = 127", "listener.host: must be a string, not an integer (127)"),
        ("https_port = 70000", "listener.https_port: must be from 0 to 65535, not 70000"),
        ("https_port = -1", "listener.https_port: must be from 0 to 65535, not -1"),
    ],
)
def test_bad_listener_values(tmp_path: Path, listener: str, expected: str) -> None:
    message = config_error(tmp_path, MINIMAL + f"\n[listener]\n{listener}\n")
    assert expected in message
    assert str(tmp_path.resolve() / CONFIG_FILE_NAME) in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('client_ca = "pki/ca.crt"', "client_ca = 5", "tls.client_ca: must be a path or a list of paths"),
        ('client_ca = "pki/ca.crt"', "client_ca = []", "tls.client_ca: must name at least one file"),
        ('certificate = "pki/server.crt"', "", "tls.certificate: missing (required)"),
        ('certificate = "pki/server.crt"', 'certificate = ""', "tls.certificate: must not be empty"),
        ("[tls]", '[tls]\nidentity_from = "email"', "tls.identity_from: must be one of cn, subject, ou, san-dns"),
        ('url = "sqlite:///strongroom.db"', 'url = "not a url"', "storage.url: is not a database URL"),
        ('url = "sqlite:///strongroom.db"', "", "storage.url: missing (required)"),
        ("[storage]", '[policy]\nadmin_identities = "admin"\n[storage]', "policy.admin_identities: must be a list"),
        ("[tls]", 'log_level = "LOUD"\n[tls]', "log_level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("[tls]", 'test_harness = "yes"\n[tls]', "test_harness: must be true or false"),
        ("[tls]", "listener = 5\n[tls]", "listener must be a table ([listener]), not an integer"),
    ],
)
def test_bad_values(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in config_error(tmp_path, replace_line(MINIMAL, old, new))


def test_missing_section_reports_its_required_keys(tmp_path: Path) -> None:
    text = MINIMAL.split("[custody]")[0] + '[storage]\nurl = "sqlite:///x.db"\n'
    assert "custody.module: missing (required)" in config_error(tmp_path, text)


@pytest.mark.parametrize(
    ("pin_lines", "expected"),
    [
        ("", "set exactly one of pin_env (an environment variable holding the token PIN) and pin_file"),
        ('pin_env = "PIN"\npin_file = "hsm/user.pin"', "pin_file (a file holding it); both are set"),
        ('pin_env = "MY-PIN"', "custody.pin_env: must be an environment variable name"),
        ("pin_env = 1234", "custody.pin_env: must be a string"),
    ],
)
def test_pin_source_must_be_exactly_one_valid_one(tmp_path: Path, pin_lines: str, expected: str) -> None:
    text = replace_line(MINIMAL, 'pin_file = "hsm/user.pin"', pin_lines)
    assert expected in config_error(tmp_path, text)


# ---- read_pin


def custody(**pin: object) -> CustodySettings:
    return CustodySettings(module=Path(MODULE), token_label="t", **pin)  # type: ignore[arg-type]


def test_pin_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRONGROOM_TEST_PIN", " 1234 ")
    assert read_pin(custody(pin_env="STRONGROOM_TEST_PIN")) == " 1234 "


def test_pin_environment_variable_unset_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRONGROOM_PIN", raising=False)
    with pytest.raises(ConfigError, match="environment variable STRONGROOM_PIN is not set"):
        read_pin(custody(pin_env="STRONGROOM_PIN"))
    monkeypatch.setenv("STRONGROOM_PIN", "")
    with pytest.raises(ConfigError, match="environment variable STRONGROOM_PIN is empty"):
        read_pin(custody(pin_env="STRONGROOM_PIN"))


def test_pin_from_file_first_line_stripped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pin_file = tmp_path / "user.pin"
    pin_file.write_text("  s3cret-pin \nsecond line\n", encoding="utf-8")
    pin_file.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="strongroom.config"):
        assert read_pin(custody(pin_file=pin_file)) == "s3cret-pin"
    assert caplog.records == []


def test_pin_file_readable_by_others_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pin_file = tmp_path / "user.pin"
    pin_file.write_text("1234\n", encoding="utf-8")
    pin_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="strongroom.config"):
        assert read_pin(custody(pin_file=pin_file)) == "1234"
        assert read_pin(custody(pin_file=pin_file)) == "1234"
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert f"PIN file {pin_file} is accessible to other users (mode 0644)" in warnings[0]
    assert "1234" not in warnings[0]


def test_pin_file_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"PIN file .*missing\.pin not found \(custody\.pin_file\)"):
        read_pin(custody(pin_file=tmp_path / "missing.pin"))
    empty = tmp_path / "empty.pin"
    empty.write_text("\n\n", encoding="utf-8")
    os.chmod(empty, 0o600)
    with pytest.raises(ConfigError, match="is empty"):
        read_pin(custody(pin_file=empty))


def test_no_pin_source() -> None:
    with pytest.raises(ConfigError, match="no token PIN source"):
        read_pin(custody())


# ---- render_default_config


def test_default_config_loads_back(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    text = render_default_config(module=Path(MODULE))
    config = load_config(write_config(data_dir, text))
    root = data_dir.resolve()
    assert config.listener == ListenerSettings()
    assert config.tls.certificate == root / "pki/server.crt"
    assert config.tls.private_key == root / "pki/server.key"
    assert config.tls.client_ca == (root / "pki/ca.crt",)
    assert config.custody == CustodySettings(
        module=Path(MODULE),
        token_label="strongroom",
        master_key_label="strongroom-master",
        pin_file=root / "hsm/user.pin",
        softhsm2_conf=root / "hsm/softhsm2.conf",
    )
    assert config.storage.url == f"sqlite:///{root}/strongroom.db"
    assert config.policy == PolicySettings(admin_identities=("admin",), policy_file=None)
    assert config.log_level == "INFO"
    assert config.test_harness is False


def test_default_config_documents_the_alternatives(tmp_path: Path) -> None:
    text = render_default_config()  # the installed SoftHSM2 (or its usual path)
    commented = [line.lstrip("# ") for line in text.splitlines() if line.startswith("#")]
    assert any(line.startswith('url = "postgresql+psycopg://') for line in commented)
    assert any(line.startswith('pin_env = "STRONGROOM_PIN"') for line in commented)
    assert any("libCryptoki2_64.so" in line and "Luna" in line for line in commented)
    assert any(line.startswith("policy_file = ") for line in commented)
    # Every setting, or group of settings, has a comment right above it.
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith(("#", "[")):
            above = index - 1
            while "=" in lines[above] and not lines[above].startswith("#"):
                above -= 1
            assert lines[above].startswith("#"), line
    assert tomllib.loads(text)["custody"]["module"].endswith("libsofthsm2.so")


def test_default_config_for_an_awkward_directory_name(tmp_path: Path) -> None:
    data_dir = tmp_path / 'da"ta \\ dir?#%é'
    config = load_config(write_config(data_dir, render_default_config(module=Path(MODULE))))
    assert config.tls.certificate == data_dir.resolve() / "pki/server.crt"
    from sqlalchemy.engine import make_url

    assert make_url(config.storage.url).database == str(data_dir.resolve() / "strongroom.db")


def test_the_crypto_section(tmp_path: Path) -> None:
    from kmip_server.crypto_settings import CryptoSettings

    assert load_config(write_config(tmp_path, MINIMAL)).crypto == CryptoSettings()
    text = MINIMAL + (
        "\n[crypto]\nkey_cache_size = 100\nkey_cache_seconds = 5\nstreams_per_identity = 2\n"
        'stream_idle_seconds = 30\nstream_max_bytes = 65536\nrng_seed = "refuse"\nrng_seed_max_bytes = 16\n'
    )
    assert load_config(write_config(tmp_path, text)).crypto == CryptoSettings(
        key_cache_size=100,
        key_cache_seconds=5.0,
        streams_per_identity=2,
        stream_idle_seconds=30,
        stream_max_bytes=65536,
        rng_seed="refuse",
        rng_seed_max_bytes=16,
    )
    for line, expected in (
        ('rng_seed = "sometimes"', "crypto.rng_seed: must be one of token, ignore, refuse"),
        ("stream_max_bytes = 10", "crypto.stream_max_bytes: must be from 1024"),
        ("key_cache_size = -1", "crypto.key_cache_size: must be from 0"),
        ("key_cache_seconds = 0", "crypto.key_cache_seconds: must be greater than 0"),
        ("stream_idle = 5", "crypto.stream_idle: unknown key (did you mean 'stream_idle_seconds'?)"),
    ):
        assert expected in config_error(tmp_path, MINIMAL + f"\n[crypto]\n{line}\n")


def test_the_default_file_has_the_crypto_defaults(tmp_path: Path) -> None:
    from kmip_server.config import render_default_config
    from kmip_server.crypto_settings import CryptoSettings

    text = render_default_config()
    assert "[crypto]" in text and 'rng_seed = "token"' in text
    assert load_config(write_config(tmp_path, text)).crypto == CryptoSettings()
