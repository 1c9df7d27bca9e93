"""The ``[cse]`` and ``[dke]`` sections of ``strongroom.toml`` as ``load_config`` reads them,
from real files: the key set files (read once, at start), URLs, perimeters and keys, and the
refusals, each naming the file and the setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from kmip_server.config import ConfigError, load_config

from .hyok_jwt import Signer, b64url
from .test_xks_settings import BASE  # the least strongroom.toml: [tls], [custody], [storage]

CSE = """
[cse]
kacls_url = "https://kms.example.com:9696/cse/"
key = "cse-kek"
authentication_audiences = ["client-1"]
{extra}
[cse.authentication_issuers]
"https://idp.example.com" = "idp.json"

[cse.authorization_issuers]
"gsuitecse-tokenissuer-drive@system.gserviceaccount.com" = "google.json"
{tables}
"""

DKE = """
[dke]
url = "https://dke.example.com/dke"
audience = "https://dke.example.com"
{extra}
[dke.issuers]
"https://sts.windows.net/tenant/" = "idp.json"

[dke.keys]
finance = ["dke-finance", "01a2-old-uid"]
{tables}
"""


def configure(data_dir: Path, section: str, jwks: dict[str, object] | None = None) -> Path:
    data_dir.mkdir(exist_ok=True)
    (data_dir / "strongroom.toml").write_text(BASE + section)
    for name in ("idp.json", "google.json"):
        (data_dir / name).write_text(json.dumps(jwks or Signer("x", "k1").jwks()))
    return data_dir


def test_no_section_is_off(tmp_path: Path) -> None:
    config = load_config(configure(tmp_path, ""))
    assert config.cse is None and config.dke is None
    off = load_config(configure(tmp_path, "[cse]\nenabled = false\n[dke]\nenabled = false\n"))
    assert off.cse is None and off.dke is None


def test_a_full_cse_section(tmp_path: Path) -> None:
    tables = """
[cse.perimeters.""]
email_domains = ["Example.com"]
[cse.perimeters.finance]
claims = { department = ["finance", "audit"] }
"""
    section = CSE.format(
        extra='signing_key = "cse-signing"\nrewrap_sources = ["https://old.example.com/kacls/"]', tables=tables
    )
    settings = load_config(configure(tmp_path, section)).cse
    assert settings is not None
    assert settings.kacls_url == "https://kms.example.com:9696/cse" and settings.path == "/cse"
    assert settings.rewrap_sources == ("https://old.example.com/kacls",)
    assert settings.authentication.issuers == ("https://idp.example.com",)
    assert settings.authorization_audience == "cse-authorization" and settings.service_identity == "cse-service"
    assert settings.perimeters is not None
    assert settings.perimeters[""].refusal("a@example.com", {}) is None
    assert settings.perimeters[""].refusal("a@other.example", {}) is not None
    assert settings.perimeters["finance"].refusal("a@x", {"department": ["audit"]}) is None
    assert settings.perimeters["finance"].refusal("a@x", {"department": "sales"}) is not None


def test_a_full_dke_section(tmp_path: Path) -> None:
    settings = load_config(configure(tmp_path, DKE.format(extra="cache_days = 0", tables=""))).dke
    assert settings is not None
    assert settings.path == "/dke" and settings.keys == {"finance": ("dke-finance", "01a2-old-uid")}
    assert settings.cache_days == 0 and settings.service_identity == "dke-service"


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ('kacls_url = "http://kms.example.com/cse"', "cse.kacls_url: must be an https:// URL"),
        ('kacls_url = "https://kms.example.com/metrics"', "may not start with /metrics"),
        ('key = ""', "cse.key: must be a key's Name or Unique Identifier"),
        ("authentication_audiences = []", "cse.authentication_audiences: missing (required)"),
        ('rewrap_sources = ["https://old.example.com"]', "cse.rewrap_sources: needs signing_key"),
        ('allowed_origins = ["*"]', "cse.allowed_origins: must list https:// origins"),
        ("clock_skew = 3600", "cse.clock_skew: must be from 0 to 600"),
        ('kacls_issuers = { "https://old.example.com" = "missing.json" }', "no key set file"),
        ('perimeters = { "" = { domains = ["x"] } }', "must be a table of email_domains and claims"),
        ("surprise = 1", "cse.surprise: unknown key"),
    ],
)
def test_cse_refusals_name_the_setting(tmp_path: Path, extra: str, problem: str) -> None:
    section = CSE.format(extra="", tables="")
    key = extra.split("=")[0].strip()
    lines = [line for line in section.splitlines() if not line.startswith(key + " ")]
    section = "\n".join(lines).replace("[cse]\n", f"[cse]\n{extra}\n", 1)
    with pytest.raises(ConfigError) as raised:
        load_config(configure(tmp_path, section))
    assert problem in str(raised.value) and str(tmp_path / "strongroom.toml") in str(raised.value)


@pytest.mark.parametrize(
    ("jwks", "problem"),
    [
        ({"keys": []}, "not a JSON Web Key Set with usable public keys"),
        ({"keys": [{"kty": "oct", "k": b64url(b"s" * 32)}]}, "symmetric (oct) key"),
        ("private", "holds a private key"),
    ],
)
def test_key_set_files_must_hold_public_keys(tmp_path: Path, jwks: object, problem: str) -> None:
    if jwks == "private":
        private = rsa.generate_private_key(65537, 2048).private_numbers()
        public = Signer("x", "k1").jwks()["keys"][0]
        jwks = {
            "keys": [
                {
                    **public,
                    "n": b64url(private.public_numbers.n.to_bytes(256, "big")),
                    "d": b64url(private.d.to_bytes(256, "big")),
                    "p": b64url(private.p.to_bytes(128, "big")),
                    "q": b64url(private.q.to_bytes(128, "big")),
                    "dp": b64url(private.dmp1.to_bytes(128, "big")),
                    "dq": b64url(private.dmq1.to_bytes(128, "big")),
                    "qi": b64url(private.iqmp.to_bytes(128, "big")),
                }
            ]
        }
    with pytest.raises(ConfigError) as raised:
        load_config(configure(tmp_path, CSE.format(extra="", tables=""), jwks))  # type: ignore[arg-type]
    assert "cse.authentication_issuers" in str(raised.value) and problem in str(raised.value)


@pytest.mark.parametrize(
    ("extra", "tables", "problem"),
    [
        ('audience = "dke.example.com"', "", "dke.audience: must be the https:// URL"),
        ('url = "https://dke.example.com"', "", "dke.url: needs a path"),
        ('realm = "a,b"', "", "dke.realm: may not hold quotes or commas"),
        ("cache_days = -1", "", "dke.cache_days: must be from 0 to 365"),
        ("", 'bad_name = ["k/1"]', "dke.keys.bad_name"),
        ("", '"fin ance" = ["k1"]', "a key name is 1 to 64 letters"),
    ],
)
def test_dke_refusals_name_the_setting(tmp_path: Path, extra: str, tables: str, problem: str) -> None:
    section = DKE.format(extra="", tables=tables)
    if extra:
        key = extra.split("=")[0].strip()
        lines = [line for line in section.splitlines() if not line.startswith(key + " ")]
        section = "\n".join(lines).replace("[dke]\n", f"[dke]\n{extra}\n", 1)
    with pytest.raises(ConfigError) as raised:
        load_config(configure(tmp_path, section))
    assert problem in str(raised.value), str(raised.value)
