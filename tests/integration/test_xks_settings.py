"""The ``[xks]`` section of ``strongroom.toml`` as ``load_config`` reads it, from real files:
the secret access key files' mode and format, the URI prefix and Region, the credentials, and
that no message ever shows a secret."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kmip_server.config import ConfigError, load_config

SECRET = "RW5vdWdoLWVudHJvcHktZm9yLWEtdGVzdC1zZWNyZXQtMTIzNA="
BASE = """
[tls]
certificate = "pki/server.crt"
private_key = "pki/server.key"
client_ca = ["pki/ca.crt"]

[custody]
module = "/usr/lib/softhsm/libsofthsm2.so"
token_label = "strongroom"
pin_file = "hsm/user.pin"

[storage]
url = "sqlite:///strongroom.db"
"""


def configure(data_dir: Path, xks: str, secret: str = SECRET, mode: int = 0o600) -> Path:
    data_dir.mkdir(exist_ok=True)
    (data_dir / "strongroom.toml").write_text(BASE + xks)
    path = data_dir / "xks.secret"
    path.write_text(secret + "\n")
    path.chmod(mode)
    return data_dir


CREDENTIAL = """
[[xks.credentials]]
access_key_id = "AKQW2E3R4T5Y6U7I2O3P"
secret_access_key_file = "xks.secret"
"""


def test_a_full_section(tmp_path: Path) -> None:
    xks = f"""
[xks]
uri_prefix = "keystores/prod/"
region = "eu-west-1"
client_certificate_subject = "cks.kms.eu-west-1.amazonaws.com"
{CREDENTIAL}
[[xks.credentials]]
access_key_id = "BRT7YU6IO5PL4KJ3HG2F"
secret_access_key_file = "xks.secret"
identity = "aws-xks-prod"
"""
    settings = load_config(configure(tmp_path, xks)).xks
    assert settings is not None
    assert (settings.uri_prefix, settings.api_path, settings.region) == (
        "/keystores/prod",
        "/keystores/prod/kms/xks/v1",
        "eu-west-1",
    )
    assert settings.client_certificate_subject == "cks.kms.eu-west-1.amazonaws.com"
    assert [(c.access_key_id, c.identity) for c in settings.credentials] == [
        ("AKQW2E3R4T5Y6U7I2O3P", "aws-xks"),
        ("BRT7YU6IO5PL4KJ3HG2F", "aws-xks-prod"),
    ]
    assert settings.credentials[0].secret_access_key == SECRET
    assert SECRET not in repr(settings)


def test_plain_http_for_local_testing_and_request_rates(tmp_path: Path) -> None:
    xks = f"""
[xks]
region = "us-east-1"
insecure_http = true
insecure_http_port = 9697
{CREDENTIAL}max_requests_per_second = 2
[[xks.credentials]]
access_key_id = "BRT7YU6IO5PL4KJ3HG2F"
secret_access_key_file = "xks.secret"
max_requests_per_second = 0.5
"""
    settings = load_config(configure(tmp_path, xks)).xks
    assert settings is not None
    assert (settings.insecure_http, settings.insecure_http_port) == (True, 9697)
    assert [c.max_requests_per_second for c in settings.credentials] == [2.0, 0.5]
    plain = load_config(configure(tmp_path, f'[xks]\nregion = "us-east-1"\n{CREDENTIAL}')).xks
    assert plain is not None
    assert (plain.insecure_http, plain.insecure_http_port) == (False, None)
    assert plain.credentials[0].max_requests_per_second is None  # no limit


def test_no_section_or_disabled_is_off(tmp_path: Path) -> None:
    assert load_config(configure(tmp_path, "")).xks is None
    off = f'[xks]\nenabled = false\nregion = "us-east-1"\n{CREDENTIAL}'
    assert load_config(configure(tmp_path, off)).xks is None


@pytest.mark.parametrize(
    ("xks", "said"),
    [
        (f'[xks]\nregion = "us-east-1"\nuri_prefix = "/a b"\n{CREDENTIAL}', "uri_prefix: may hold only"),
        (f'[xks]\nregion = "us-east-1"\nuri_prefix = "/{"p" * 120}"\n{CREDENTIAL}', "at most 128"),
        (f'[xks]\nregion = "us-east-1"\nuri_prefix = "/dashboard/x"\n{CREDENTIAL}', "admin listener serves"),
        (f"[xks]\n{CREDENTIAL}", "xks.region: missing"),
        (f'[xks]\nregion = "Mars"\n{CREDENTIAL}', "AWS Region"),
        ('[xks]\nregion = "us-east-1"\n', "needs one or more [[xks.credentials]]"),
        (f'[xks]\nregion = "us-east-1"\ninsecure_http = true\n{CREDENTIAL}', "xks.insecure_http_port: missing"),
        (
            f'[xks]\nregion = "us-east-1"\ninsecure_http_port = 9697\n{CREDENTIAL}',
            "xks.insecure_http_port: is only for insecure_http = true",
        ),
        (
            f'[xks]\nregion = "us-east-1"\ninsecure_http = false\ninsecure_http_port = 9697\n{CREDENTIAL}',
            "xks.insecure_http_port: is only for insecure_http = true",
        ),
        (
            f'[xks]\nregion = "us-east-1"\ninsecure_http = true\ninsecure_http_port = 9697\n'
            f'client_certificate_subject = "cks.kms.us-east-1.amazonaws.com"\n{CREDENTIAL}',
            "xks.insecure_http: cannot go with client_certificate_subject",
        ),
        (
            f'[xks]\nregion = "us-east-1"\ninsecure_http = true\ninsecure_http_port = 70000\n{CREDENTIAL}',
            "xks.insecure_http_port: must be from 1 to 65535",
        ),
        (
            f'[xks]\nregion = "us-east-1"\ninsecure_http = "yes"\ninsecure_http_port = 9697\n{CREDENTIAL}',
            "xks.insecure_http: must be true or false",
        ),
        (f'[xks]\nregion = "us-east-1"\n{CREDENTIAL}max_requests_per_second = 0\n', "must be greater than 0"),
        (f'[xks]\nregion = "us-east-1"\n{CREDENTIAL}max_requests_per_second = -2.5\n', "must be greater than 0"),
        (
            f'[xks]\nregion = "us-east-1"\n{CREDENTIAL}max_requests_per_second = "10"\n',
            "xks.credentials[0].max_requests_per_second: must be a number",
        ),
        (f'[xks]\nregion = "us-east-1"\n{CREDENTIAL}max_requests_per_second = inf\n', "must be at most"),
        (f'[xks]\nregion = "us-east-1"\nuri_prefx = "/a"\n{CREDENTIAL}', "did you mean 'uri_prefix'"),
        (
            '[xks]\nregion = "us-east-1"\n[[xks.credentials]]\naccess_key_id = "lowercase-is-not-an-id"\n'
            'secret_access_key_file = "xks.secret"\n',
            "xks.credentials[0].access_key_id: must be 20 to 30",
        ),
        (f'[xks]\nregion = "us-east-1"\n{CREDENTIAL}{CREDENTIAL}', "given more than once"),
        (
            '[xks]\nregion = "us-east-1"\n[[xks.credentials]]\naccess_key_id = "AKQW2E3R4T5Y6U7I2O3P"\n'
            'secret_access_key_file = "missing.secret"\n',
            "not found",
        ),
        (
            '[xks]\nregion = "us-east-1"\n[[xks.credentials]]\naccess_key_id = "AKQW2E3R4T5Y6U7I2O3P"\n'
            'secret_file = "xks.secret"\n',
            "unknown key",
        ),
    ],
)
def test_mistakes_are_refused_naming_the_key(tmp_path: Path, xks: str, said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(configure(tmp_path, xks))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_secret_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(
        ConfigError, match=rf"may be read by other users \(mode {mode:04o}\); run: chmod 600"
    ) as refused:
        load_config(configure(tmp_path, f'[xks]\nregion = "us-east-1"\n{CREDENTIAL}', mode=mode))
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize("secret", ["too-short", SECRET + "!", "x" * 65])
def test_a_secret_aws_kms_would_not_take_is_refused_without_showing_it(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigError, match="43 to 64 characters") as refused:
        load_config(configure(tmp_path, f'[xks]\nregion = "us-east-1"\n{CREDENTIAL}', secret=secret))
    assert secret not in str(refused.value)
