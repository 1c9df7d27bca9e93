"""Who is looking at the dashboard: login links, session cookies and CSRF tokens.

A login link (``strongroom dashboard-link``) and a session cookie are the same shape of token,
``v1.<name>.<expires>[.<nonce>].<mac>`` (name and MAC in unpadded base64url, ``expires`` POSIX
seconds), each MAC'd by the token's audit key (``custody.audit_mac``, an HMAC that never leaves
the HSM) under a domain of its own, so that a link is never a cookie nor a cookie a CSRF token:

* link: ``audit_mac(LINK || "v1.<name>.<expires>")``, valid for minutes;
* session: ``audit_mac(SESSION || "v1.<name>.<expires>.<nonce>")``, valid for
  :data:`SESSION_SECONDS`; the random nonce makes each login's session (and CSRF token) its own;
* CSRF: ``audit_mac(CSRF || binding)``, where the binding is the session cookie, or for a
  client certificate its SHA-256 fingerprint: a form that changes anything carries it, and a
  cross-site page cannot read it (the cookie is HttpOnly and SameSite=Strict besides).

Nothing is stored on the server: every worker of every node sharing the token checks the same
MACs. A link can be used more than once until it expires (keep it short: 15 minutes by
default); a session cannot be revoked before it expires except by logging out of the browser.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import os
from collections.abc import Callable

LINK = b"strongroom dashboard link v1\x00"
SESSION = b"strongroom dashboard session v1\x00"
CSRF = b"strongroom dashboard csrf v1\x00"

#: How long a session cookie lasts (seconds).
SESSION_SECONDS = 3600
#: The longest a login link may be valid for (seconds): ``dashboard-link --minutes`` at most a day.
MAX_LINK_SECONDS = 24 * 3600
#: The session cookie's name.
COOKIE = "strongroom_dashboard"

Mac = Callable[[bytes], bytes]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    name: str
    expires: int
    nonce: str | None = None


def _payload(name: str, expires: int, nonce: str | None) -> str:
    fields = ["v1", _b64(name.encode("utf-8")), str(expires)]
    if nonce is not None:
        fields.append(nonce)
    return ".".join(fields)


def _sign(mac: Mac, domain: bytes, payload: str) -> str:
    return payload + "." + _b64(mac(domain + payload.encode("ascii")))


def _check(mac: Mac, domain: bytes, token: str, now: float, *, with_nonce: bool, longest: int) -> Token | None:
    """The token's contents if its MAC is ours for ``domain`` and it has not expired; else None."""
    if len(token) > 1024:
        return None
    payload, _, given = token.rpartition(".")
    fields = payload.split(".")
    if len(fields) != (4 if with_nonce else 3) or fields[0] != "v1" or not fields[2].isdigit():
        return None
    try:
        name = _unb64(fields[1]).decode("utf-8")
        signature = _unb64(given)
        expected = mac(domain + payload.encode("ascii"))
    except (ValueError, UnicodeError):
        return None
    if not hmac.compare_digest(signature, expected):
        return None
    expires = int(fields[2])
    if not now < expires <= now + longest or not name:
        return None
    return Token(name, expires, fields[3] if with_nonce else None)


def make_link_token(mac: Mac, name: str, expires: int) -> str:
    return _sign(mac, LINK, _payload(name, expires, None))


def check_link_token(mac: Mac, token: str, now: float) -> Token | None:
    return _check(mac, LINK, token, now, with_nonce=False, longest=MAX_LINK_SECONDS)


def make_session(mac: Mac, name: str, now: float, nonce: str | None = None) -> str:
    nonce = nonce if nonce is not None else _b64(os.urandom(12))
    return _sign(mac, SESSION, _payload(name, int(now) + SESSION_SECONDS, nonce))


def check_session(mac: Mac, token: str, now: float) -> Token | None:
    return _check(mac, SESSION, token, now, with_nonce=True, longest=SESSION_SECONDS)


def csrf_token(mac: Mac, binding: str) -> str:
    return _b64(mac(CSRF + binding.encode("utf-8")))


def csrf_ok(mac: Mac, binding: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(
        (given or "").encode("ascii", "replace"), csrf_token(mac, binding).encode()
    )


def cookie_value(header: str, name: str = COOKIE) -> str | None:
    """The value of cookie ``name`` in a Cookie header field, or None."""
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def session_cookie(value: str, max_age: int = SESSION_SECONDS) -> str:
    """The Set-Cookie field value for a session (an empty value and 0 log out)."""
    return f"{COOKIE}={value}; Max-Age={max_age}; Path=/dashboard; HttpOnly; Secure; SameSite=Strict"
