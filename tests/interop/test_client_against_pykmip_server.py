"""This library's Client against an independent server: PyKMIP's ``pykmip-server``, started here
on loopback with its own certificates. The core operations must work against it as they do
against Strongroom."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kmip_client import Client, KmipError
from kmip_client.protocol.spec.enums import CryptographicAlgorithm, ObjectType, RevocationReasonCode, State
from tests.support.pykmip_peer import PyKmipServer, running_pykmip_server
from tests.support.server_process import free_port


@pytest.fixture(scope="module")
def pykmip_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PyKmipServer]:
    directory: Path = tmp_path_factory.mktemp("pykmip-server")
    with running_pykmip_server(directory, free_port()) as server:
        yield server


@pytest.fixture(params=[None, (1, 2), (1, 4)], ids=["negotiated", "kmip1.2", "kmip1.4"])
def client(request: pytest.FixtureRequest, pykmip_server: PyKmipServer) -> Iterator[Client]:
    tls = pykmip_server.tls
    with Client(
        f"{pykmip_server.host}:{pykmip_server.port}", ca=tls.ca, cert=tls.cert, key=tls.key, version=request.param
    ) as kmip:
        yield kmip


def test_negotiates_a_version_pykmip_speaks(client: Client) -> None:
    assert client.version in ((2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0))
    assert (1, 2) in client.discover_versions()


def test_key_lifecycle_against_pykmip(client: Client) -> None:
    uid = client.create(CryptographicAlgorithm.AES, 256, name=f"interop-{client.version}")
    key = client.get(uid)
    assert key.object_type == ObjectType.SYMMETRIC_KEY and len(key.value) == 32
    assert key.algorithm == CryptographicAlgorithm.AES and key.length == 256
    assert client.get_attributes(uid, ["State"])["State"] == [State.PRE_ACTIVE]
    client.activate(uid)
    assert client.get_attributes(uid, ["State"])["State"] == [State.ACTIVE]
    with pytest.raises(KmipError) as refused:
        client.destroy(uid)  # an Active key
    assert refused.value.message
    client.revoke(uid, RevocationReasonCode.CESSATION_OF_OPERATION)
    client.destroy(uid)
    with pytest.raises(KmipError):
        client.get(uid)


def test_register_and_locate_against_pykmip(client: Client) -> None:
    name = f"registered-{client.version}"
    uid = client.register_key(bytes(range(32)), "AES", name=name)
    assert client.get(uid).value == bytes(range(32))
    assert client.locate(name=name) == [uid]
    with pytest.raises(KmipError) as missing:
        client.get("999999")
    assert missing.value.reason is not None
