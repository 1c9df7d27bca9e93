"""The HTTPS listener's routing table: a path's entry decides 404, 405 and its Allow."""

from __future__ import annotations

import pytest

from kmip_server.transport import https_listener
from kmip_server.transport.https_listener import KMIP_PATH, ROUTES, Route, resolve


def test_kmip_is_posted() -> None:
    assert resolve(KMIP_PATH, "POST") is ROUTES[KMIP_PATH]


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_other_methods_are_405_with_allow(method: str) -> None:
    answer = resolve(KMIP_PATH, method)
    assert not isinstance(answer, Route)
    assert answer.status == 405 and ("Allow", "POST") in answer.headers


@pytest.mark.parametrize("path", ["/", "/kmip/", "/KMIP", "*"])
def test_other_paths_are_404(path: str) -> None:
    answer = resolve(path, "POST")
    assert not isinstance(answer, Route) and answer.status == 404


def test_an_endpoint_is_one_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    def health(connection: object, request: object, body: bytes) -> https_listener._Answer:
        return https_listener._Answer(200, "text/plain", b"ok\n")

    health_route = Route(("GET",), health)
    monkeypatch.setitem(ROUTES, "/health", health_route)
    assert resolve("/health", "GET") is health_route
    assert resolve("/health", "HEAD") is health_route  # HEAD goes where GET does
    refused = resolve("/health", "POST")
    assert not isinstance(refused, Route)
    assert refused.status == 405 and ("Allow", "GET") in refused.headers
    assert resolve(KMIP_PATH, "POST") is ROUTES[KMIP_PATH]
