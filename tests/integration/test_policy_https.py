"""The access matrix over KMIP over HTTPS: a real server serving policies/example.toml, real
client certificates for each role, the kmip_client library over HttpsTransport (JSON, XML,
TTLV), each operation allowed, refused or hidden as the policy says."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest

from kmip_client import Client
from kmip_client.https_transport import HttpsTransport
from kmip_client.protocol.errors import KmipError
from kmip_client.protocol.spec.enums import ResultReason
from kmip_client.tls import client_ssl_context
from tests.support.server_process import LOOPBACK, free_port, issue_client_cert, running_server, strongroom_init

from .test_policy_matrix import EXAMPLE, expected

ROLES = {
    "owner": "fin-alice",
    "other identity": "fin-bob",
    "tenant admin": "fin-admin",
    "global admin": "admin",
    "auditor": "fin-audit",
    "other tenant": "eng-carol",
}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, object]]]:
    data_dir = tmp_path_factory.mktemp("policy-https") / "data"
    strongroom_init(data_dir)
    policy = data_dir / "policy.toml"
    policy.write_text(EXAMPLE.read_text())
    config = data_dir / "strongroom.toml"
    config.write_text(config.read_text().replace("[policy]\n", f'[policy]\npolicy_file = "{policy}"\n', 1))
    contexts = {}
    for role, name in ROLES.items():
        if name == "admin":
            files = (data_dir / "clients/ca.crt", data_dir / "clients/admin.crt", data_dir / "clients/admin.key")
        else:
            tls = issue_client_cert(data_dir, name, data_dir / "people" / name)
            files = (tls.ca, tls.cert, tls.key)
        contexts[role] = client_ssl_context(ca=str(files[0]), cert=str(files[1]), key=str(files[2]))
    https_port = free_port()
    with running_server(data_dir, free_port(), workers=1, extra_args=["--https-port", str(https_port)]):
        yield f"https://{LOOPBACK}:{https_port}/kmip", contexts


def client(served, role: str, encoding: str) -> Client:
    url, contexts = served
    return Client(transport=HttpsTransport(url, contexts[role], encoding=encoding))


def _outcome(call) -> str:
    try:
        call()
    except KmipError as exc:
        if exc.reason == ResultReason.PERMISSION_DENIED:
            return "denied"
        if exc.reason in (ResultReason.OBJECT_NOT_FOUND, ResultReason.ITEM_NOT_FOUND):
            return "hidden"
        raise
    return "allowed"


@pytest.mark.parametrize("encoding", ["json", "xml", "ttlv"])
@pytest.mark.parametrize("role", list(ROLES))
def test_operations_over_https_follow_the_policy(served, role: str, encoding: str) -> None:
    with client(served, "owner", encoding) as owner, client(served, role, encoding) as other:
        for operation in ("Get", "Get Attributes", "Activate", "Destroy"):
            uid = owner.create("AES", 256, name="https-matrix")
            method = {
                "Get": other.get,
                "Get Attributes": other.get_attributes,
                "Activate": other.activate,
                "Destroy": other.destroy,
            }[operation]
            assert _outcome(functools.partial(method, uid)) == expected(role, operation), (role, operation, encoding)
        found = other.locate(name="https-matrix")
        assert bool(found) == (expected(role, "Locate") == "allowed"), (role, found)

