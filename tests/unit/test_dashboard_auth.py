"""The dashboard's login links, session cookies and CSRF tokens (kmip_server/admin/dashboard/auth.py),
with an HMAC standing in for the token's audit key."""

from __future__ import annotations

import hashlib
import hmac

from kmip_server.admin.dashboard import auth

NOW = 1_800_000_000.0


def mac(data: bytes) -> bytes:
    return hmac.new(b"k" * 32, data, hashlib.sha256).digest()


def other_mac(data: bytes) -> bytes:
    return hmac.new(b"x" * 32, data, hashlib.sha256).digest()


def test_a_link_checks_until_it_expires() -> None:
    token = auth.make_link_token(mac, "alice", int(NOW) + 900)
    assert auth.check_link_token(mac, token, NOW) == auth.Token("alice", int(NOW) + 900)
    assert auth.check_link_token(mac, token, NOW + 899) is not None
    assert auth.check_link_token(mac, token, NOW + 900) is None  # expired
    assert auth.check_link_token(other_mac, token, NOW) is None  # another token's key


def test_names_with_any_characters_round_trip() -> None:
    for name in ("CN with spaces", "é.ü/..", "a.b.c"):
        token = auth.make_link_token(mac, name, int(NOW) + 60)
        found = auth.check_link_token(mac, token, NOW)
        assert found is not None and found.name == name


def test_an_edited_link_is_refused() -> None:
    token = auth.make_link_token(mac, "alice", int(NOW) + 900)
    payload, _, signature = token.rpartition(".")
    version, name, expires = payload.split(".")
    bob = auth.make_link_token(mac, "bob", int(NOW) + 900).split(".")[1]
    for bad in (
        f"{version}.{bob}.{expires}.{signature}",  # another name
        f"{version}.{name}.{int(expires) + 1}.{signature}",  # a later expiry
        f"v2.{name}.{expires}.{signature}",
        f"{payload}.{signature[:-1]}",
        f"{payload}.",
        payload,
        "",
        "v1..1.AAAA",
        "v1.!!!.1.AAAA",
        token + ".extra",
        "v1." + "A" * 2000,
    ):
        assert auth.check_link_token(mac, bad, NOW) is None, bad


def test_a_link_valid_for_too_long_is_refused() -> None:
    token = auth.make_link_token(mac, "alice", int(NOW) + auth.MAX_LINK_SECONDS + 60)
    assert auth.check_link_token(mac, token, NOW) is None


def test_links_sessions_and_csrf_tokens_are_not_interchangeable() -> None:
    link = auth.make_link_token(mac, "alice", int(NOW) + 900)
    session = auth.make_session(mac, "alice", NOW, nonce="n0nce")
    assert auth.check_session(mac, session, NOW) == auth.Token("alice", int(NOW) + auth.SESSION_SECONDS, "n0nce")
    assert auth.check_session(mac, link, NOW) is None
    assert auth.check_link_token(mac, session, NOW) is None
    # A link's MAC over the same payload as a session's is under another domain.
    payload = session.rpartition(".")[0]
    forged = payload + "." + auth._b64(mac(auth.LINK + payload.encode()))
    assert auth.check_session(mac, forged, NOW) is None
    assert auth.check_session(mac, session, NOW + auth.SESSION_SECONDS) is None  # expired


def test_each_session_has_its_own_nonce_and_csrf_token() -> None:
    first = auth.make_session(mac, "alice", NOW)
    second = auth.make_session(mac, "alice", NOW)
    assert first != second
    token = auth.csrf_token(mac, "session:" + first)
    assert auth.csrf_ok(mac, "session:" + first, token)
    assert not auth.csrf_ok(mac, "session:" + second, token)
    assert not auth.csrf_ok(mac, "session:" + first, None)
    assert not auth.csrf_ok(mac, "session:" + first, "")
    assert not auth.csrf_ok(mac, "session:" + first, token[:-1] + "é")
    assert not auth.csrf_ok(other_mac, "session:" + first, token)


def test_cookie_header_parsing_and_the_set_cookie_field() -> None:
    assert auth.cookie_value(f"a=1; {auth.COOKIE}=v1.x.2.n.m; b=2") == "v1.x.2.n.m"
    assert auth.cookie_value("a=1") is None
    assert auth.cookie_value("") is None
    field = auth.session_cookie("value")
    for part in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/dashboard", f"Max-Age={auth.SESSION_SECONDS}"):
        assert part in field
    assert auth.session_cookie("", 0).startswith(f"{auth.COOKIE}=; Max-Age=0;")


def test_attribute_values_never_render_bytes() -> None:
    from kmip_client.protocol.model.attributes import Digest
    from kmip_client.protocol.spec.enums import CryptographicAlgorithm, HashingAlgorithm
    from kmip_server.admin.dashboard.data import render_value

    secret = bytes(range(32))
    assert render_value("x-blob", secret) == "(32 bytes, not shown)"
    digest = render_value("Digest", Digest(hashing_algorithm=HashingAlgorithm.SHA_256, digest_value=secret))
    assert secret.hex() not in digest and "32 bytes" in digest and "SHA 256" in digest
    assert render_value("Cryptographic Algorithm", CryptographicAlgorithm.AES) == "AES"
    assert render_value("Cryptographic Usage Mask", 12) == "Encrypt | Decrypt"


def test_the_query_string_of_a_request_target() -> None:
    from kmip_server.transport.https_listener import _path, _query

    assert (_path("/dashboard/key?uid=a%20b"), _query("/dashboard/key?uid=a%20b")) == ("/dashboard/key", "uid=a%20b")
    assert _query("/dashboard") == "" and _query("/dashboard?") == ""
    assert _query("https://h:1/dashboard/keys?q=x") == "q=x"
    assert _query("*") == ""
