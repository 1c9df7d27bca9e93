"""The client over KMIP-over-HTTPS, in each body encoding, against Strongroom's own HTTPS
listener: a real ``strongroom serve --https-port`` on loopback (real mutual TLS, SoftHSM2),
on each store (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from kmip_client import Client
from kmip_client.https_transport import HttpsTransport
from kmip_client.tls import client_ssl_context
from kmip_client.transport import InvalidResponse
from tests.support.server_process import LOOPBACK, free_port, running_server, strongroom_init

from .conftest import postgres_schema_url


def _use_store(data_dir: Path, url: str) -> None:
    """Point the data directory's configuration at another database."""
    config = data_dir / "strongroom.toml"
    text, count = re.subn(r'(?m)^url = ".*"$', f'url = "{url}"', config.read_text())
    assert count == 1
    config.write_text(text)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def https_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ssl.SSLContext]]:
    data_dir = tmp_path_factory.mktemp(f"client-https-{request.param}") / "data"
    admin = strongroom_init(data_dir)
    context = client_ssl_context(ca=admin.ca, cert=admin.cert, key=admin.key)
    https_port = free_port()
    store = postgres_schema_url() if request.param == "postgresql" else contextlib.nullcontext()
    with store as url:  # the SQLite store init made, or an empty PostgreSQL schema
        if url is not None:
            _use_store(data_dir, url)
        with running_server(data_dir, free_port(), workers=1, extra_args=["--https-port", str(https_port)]):
            yield f"https://{LOOPBACK}:{https_port}/kmip", context


@pytest.mark.parametrize("encoding", ["ttlv", "json", "xml"])
def test_client_over_https(https_url, encoding):
    url, context = https_url
    transport = HttpsTransport(url, context, encoding=encoding)
    with Client(transport=transport) as kmip:
        assert kmip.version == (2, 1)
        uid = kmip.create("AES", 256, name=f"over-https-{encoding}", attributes={"x-via": encoding})
        kmip.activate(uid)
        assert len(kmip.get(uid).value) == 32
        assert kmip.locate(name=f"over-https-{encoding}") == [uid]
        assert kmip.get_attributes(uid, ["x-via"]) == {"x-via": [encoding]}


def test_https_errors(https_url):
    url, context = https_url
    with pytest.raises(InvalidResponse, match="HTTP 404"):
        HttpsTransport(url.replace("/kmip", "/other"), context).exchange(
            b"\x42\x00\x78\x01" + bytes(4), idempotent=True
        )
    with pytest.raises(ValueError, match="encoding"):
        HttpsTransport(url, context, encoding="yaml")
    with pytest.raises(ValueError, match="https"):
        HttpsTransport(url.replace("https", "http"), context)
