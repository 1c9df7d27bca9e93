"""Checking the AWS Signature Version 4 on an XKS request (XKS proxy API, Appendix A).

AWS KMS signs every call to the proxy with an access key id and secret the customer configured
in both places, for the service name ``kms-xks-proxy`` and the Region KMS calls from, signing
the Host and X-Amz-Date header fields at least. The check follows the AWS General Reference's
four tasks: the canonical request (method, URI path, query, the signed header fields, the
SHA-256 of the body), the string to sign (algorithm, X-Amz-Date, credential scope, the hash of
the canonical request), the signing key derived from the secret by HMAC-SHA256 over date,
Region, service and ``aws4_request``, and the signature compared in constant time. A request
whose X-Amz-Date is more than five minutes from this server's clock is refused (replay
protection, the specification's "SHOULD fail authentication").

Hand-written: botocore (the AWS SDK's core) signs requests but has no verifier, and the few
verifying libraries are small, unmaintained or tied to a web framework; this is the
specification's arithmetic, about a hundred lines, with its tests written from AWS's
documents (tests/integration/test_xks_api.py signs with hashlib and hmac on its own).

Nothing secret leaves this module: a refusal says what did not match, never a key or
signature it computed.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
import urllib.parse
from collections.abc import Mapping, Sequence

__all__ = ["ALGORITHM", "MAX_SKEW_SECONDS", "SERVICE", "SignatureRefused", "verify"]

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "kms-xks-proxy"
MAX_SKEW_SECONDS = 300
_TERMINATOR = "aws4_request"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 +Credential=(?P<credential>[^, ]+), *SignedHeaders=(?P<signed>[^, ]+), *"
    r"Signature=(?P<signature>[0-9a-fA-F]{64})\Z"
)
_AMZ_DATE = re.compile(r"(\d{8})T(\d{6})Z\Z")
_SPACES = re.compile(r" +")
_UNRESERVED = "-_.~"


class SignatureRefused(Exception):
    """The request's signature is missing, malformed, stale or wrong (the message says which)."""


def _headers(fields: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in fields:
        found.setdefault(name, []).append(value)
    return found


def _authorization(headers: Mapping[str, list[str]]) -> re.Match[str]:
    values = headers.get("authorization", [])
    if len(values) != 1:
        raise SignatureRefused("no Authorization header field" if not values else "several Authorization fields")
    match = _AUTHORIZATION.match(values[0].strip())
    if match is None:
        raise SignatureRefused(f"the Authorization field is not an {ALGORITHM} signature")
    return match


def _canonical_uri(path: str) -> str:
    # Each segment as sent, URI-encoded again: what AWS services other than S3 sign.
    return "/".join(urllib.parse.quote(segment, safe=_UNRESERVED) for segment in path.split("/")) or "/"


def _canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else ():
        name, _, value = part.partition("=")
        pairs.append(
            (
                urllib.parse.quote(urllib.parse.unquote(name), safe=_UNRESERVED),
                urllib.parse.quote(urllib.parse.unquote(value), safe=_UNRESERVED),
            )
        )
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _canonical_headers(headers: Mapping[str, list[str]], signed: list[str]) -> str:
    lines = []
    for name in signed:
        values = headers.get(name)
        if values is None:
            raise SignatureRefused(f"the signed header field {name!r} is missing")
        lines.append(name + ":" + ",".join(_SPACES.sub(" ", value.strip()) for value in values) + "\n")
    return "".join(lines)


def _request_time(headers: Mapping[str, list[str]], now: float) -> tuple[str, str]:
    """X-Amz-Date as sent, and its date (YYYYMMDD), if within the allowed skew of ``now``."""
    values = headers.get("x-amz-date", [])
    match = _AMZ_DATE.match(values[0].strip()) if len(values) == 1 else None
    if match is None:
        raise SignatureRefused("the request needs one X-Amz-Date field, YYYYMMDD'T'HHMMSS'Z'")
    try:
        when = calendar.timegm(time.strptime(match.group(0), "%Y%m%dT%H%M%SZ"))
    except ValueError:
        raise SignatureRefused("X-Amz-Date is not a date") from None
    if abs(when - now) > MAX_SKEW_SECONDS:
        raise SignatureRefused(f"X-Amz-Date is more than {MAX_SKEW_SECONDS} s from the server's clock")
    return match.group(0), match.group(1)


_signing_keys: dict[tuple[str, str, str], bytes] = {}


def _signing_key(secret: str, date: str, region: str) -> bytes:
    """HMAC-SHA256 over date, Region, service and terminator, keyed by "AWS4" + secret; the
    same for a day, so kept (a few per day, one per credential)."""
    cached = _signing_keys.get((secret, date, region))
    if cached is not None:
        return cached
    key = ("AWS4" + secret).encode()
    for part in (date, region, SERVICE, _TERMINATOR):
        key = hmac.digest(key, part.encode(), "sha256")
    if len(_signing_keys) > 64:
        _signing_keys.clear()
    _signing_keys[(secret, date, region)] = key
    return key


def verify(
    method: str,
    target: str,
    fields: Sequence[tuple[str, str]],
    body: bytes,
    *,
    secrets: Mapping[str, str],
    region: str,
    now: float | None = None,
) -> str:
    """Check the request's signature; the access key id it was made with, or SignatureRefused.

    ``target`` is the request target as sent (path and query), ``fields`` the header fields
    (names in lower case) in order, ``secrets`` each accepted access key id's secret.
    """
    headers = _headers(fields)
    match = _authorization(headers)
    parts = match.group("credential").split("/")
    if len(parts) != 5:
        raise SignatureRefused("the Credential is not ACCESS_KEY_ID/DATE/REGION/SERVICE/aws4_request")
    access_key_id, scope_date, scope_region, service, terminator = parts
    secret = secrets.get(access_key_id)
    if secret is None:
        raise SignatureRefused("the access key id is not one this proxy accepts")
    if (scope_region, service, terminator) != (region, SERVICE, _TERMINATOR):
        raise SignatureRefused(f"the credential scope must be DATE/{region}/{SERVICE}/{_TERMINATOR}")
    signed = match.group("signed").split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        raise SignatureRefused("the signature must cover the Host and X-Amz-Date header fields")
    amz_date, date = _request_time(headers, time.time() if now is None else now)
    if date != scope_date:
        raise SignatureRefused("the credential scope's date is not X-Amz-Date's")
    path, _, query = target.partition("?")
    canonical = "\n".join(
        (
            method,
            _canonical_uri(path),
            _canonical_query(query),
            _canonical_headers(headers, signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        )
    )
    scope = f"{scope_date}/{region}/{SERVICE}/{_TERMINATOR}"
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    expected = hmac.new(_signing_key(secret, date, region), to_sign.encode(), "sha256").hexdigest()
    if not hmac.compare_digest(expected, match.group("signature").lower()):
        raise SignatureRefused("the signature does not match the request")
    return access_key_id
