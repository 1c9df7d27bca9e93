"""An XKS client written from AWS's documents, not from Strongroom's code, and its checks.

:func:`sign` is AWS Signature Version 4 as the AWS General Reference describes it (canonical
request, string to sign, signing key, signature) with hashlib and hmac only; it reproduces the
signatures AWS publishes for its examples (tested here), so a server that accepts what it
signs verifies SigV4 as AWS KMS signs. :class:`XksClient` sends the XKS proxy API's requests
(github.com/aws/aws-kms-xksproxy-api-spec) signed so, for the service ``kms-xks-proxy``.
test_xks_api.py and tests/bench/bench_xks.py use it.

The in-process tests below hold the server's verifier (kmip_server/hyok/xks_sigv4.py) to the
signer's output and to the refusals the specification asks for, with no server.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import http.client
import json
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import pytest

from kmip_server.hyok.xks_sigv4 import SignatureRefused, verify

SERVICE = "kms-xks-proxy"
REGION = "us-east-1"


def sign(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str,
    amz_date: str,
    region: str,
    service: str,
) -> tuple[str, str]:
    """The SignedHeaders and Signature of a request whose header fields are ``headers`` (every
    one signed, as in AWS's examples)."""

    def encode(text: str) -> str:
        return urllib.parse.quote(text, safe="-_.~")

    lowered = {name.lower(): value for name, value in headers.items()}
    names = sorted(lowered)
    canonical_uri = "/".join(encode(segment) for segment in path.split("/"))
    pairs = sorted((encode(k), encode(v)) for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True))
    canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
    canonical_headers = "".join(f"{name}:{' '.join(lowered[name].split())}\n" for name in names)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        [method, canonical_uri, canonical_query, canonical_headers, signed_headers, hashlib.sha256(body).hexdigest()]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return signed_headers, hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(access_key_id: str, amz_date: str, region: str, service: str, signed: str, signature: str) -> str:
    credential = f"{access_key_id}/{amz_date[:8]}/{region}/{service}/aws4_request"
    return f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={signed}, Signature={signature}"


def amz_date_of(seconds: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seconds))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def request_metadata(operation: str = "Encrypt") -> dict[str, str]:
    return {
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": operation,
        "kmsRequestId": f"req-{time.monotonic_ns()}",
        "kmsViaService": "ebs",
    }


@dataclasses.dataclass
class Reply:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str | None:
        """The errorName of an XKS error answer (None for a success)."""
        if self.status == 200:
            return None
        return str(self.json["errorName"])


@dataclasses.dataclass
class XksClient:
    """The XKS API at ``https://host:port{prefix}/kms/xks/v1``, signed with one credential
    (``http://`` when ``context`` is None: ``[xks] insecure_http``)."""

    host: str
    port: int
    context: ssl.SSLContext | None
    prefix: str
    access_key_id: str
    secret: str
    region: str = REGION
    _connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def call(self, operation: str, body: Mapping[str, Any] | bytes, **options: Any) -> Reply:
        """POST ``body`` to ``{prefix}/kms/xks/v1/{operation}`` ("health", "keys/ID/encrypt")."""
        return self.send(f"{self.prefix}/kms/xks/v1/{operation}", body, **options)

    def send(
        self,
        path: str,
        body: Mapping[str, Any] | bytes,
        *,
        method: str = "POST",
        content_type: str = "application/json",
        access_key_id: str | None = None,
        secret: str | None = None,
        region: str | None = None,
        service: str = SERVICE,
        when: float | None = None,
        signed_extra: Mapping[str, str] | None = None,
        signed_body: bytes | None = None,
        authorization_field: str | None = None,
    ) -> Reply:
        """Send one request; ``signed_body`` signs other bytes than those sent, ``authorization_field``
        replaces the Authorization field ("" for none), ``content_type`` "" sends no Content-Type."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        amz_date = amz_date_of(time.time() if when is None else when)
        headers = {"Host": f"{self.host}:{self.port}", "X-Amz-Date": amz_date, **(signed_extra or {})}
        signed, signature = sign(
            method,
            path,
            "",
            headers,
            data if signed_body is None else signed_body,
            secret=secret or self.secret,
            amz_date=amz_date,
            region=region or self.region,
            service=service,
        )
        fields = {**headers, "Content-Type": content_type} if content_type else dict(headers)
        auth = authorization(
            access_key_id or self.access_key_id, amz_date, region or self.region, service, signed, signature
        )
        if authorization_field != "":
            fields["Authorization"] = authorization_field or auth
        for attempt in range(2):
            if self._connection is None:
                if self.context is None:
                    self._connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
                else:
                    self._connection = http.client.HTTPSConnection(
                        self.host, self.port, timeout=30, context=self.context
                    )
            try:
                # A GET or HEAD without a body has no Content-Length either, as curl sends it.
                sent = data if data or method not in ("GET", "HEAD") else None
                self._connection.request(method, path, body=sent, headers=fields)
                response = self._connection.getresponse()
                reply = Reply(response.status, response.read(), tuple(response.getheaders()))
            except (ConnectionError, http.client.HTTPException):
                self.close()  # the server closed a kept-alive connection: once more on a new one
                if attempt:
                    raise
                continue
            if response.will_close:
                self.close()
            return reply
        raise AssertionError("unreachable")


# ---- the signer against AWS's published examples


def test_the_signer_reproduces_aws_published_signatures() -> None:
    # Amazon S3 API Reference, "Signature Calculations for the Authorization Header", GET Object.
    signed, signature = sign(
        "GET",
        "/test.txt",
        "",
        {
            "Host": "examplebucket.s3.amazonaws.com",
            "Range": "bytes=0-9",
            "x-amz-content-sha256": hashlib.sha256(b"").hexdigest(),
            "x-amz-date": "20130524T000000Z",
        },
        b"",
        secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        amz_date="20130524T000000Z",
        region="us-east-1",
        service="s3",
    )
    assert signed == "host;range;x-amz-content-sha256;x-amz-date"
    assert signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    # AWS General Reference, the Signature Version 4 example (IAM ListUsers, with a query).
    _, signature = sign(
        "GET",
        "/",
        "Action=ListUsers&Version=2010-05-08",
        {
            "Host": "iam.amazonaws.com",
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "X-Amz-Date": "20150830T123600Z",
        },
        b"",
        secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        amz_date="20150830T123600Z",
        region="us-east-1",
        service="iam",
    )
    assert signature == "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"


# ---- the server's verifier, in process

AKID = "QPNM4ZHQ6XR2TKSW7BCD"
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
NOW = 1_900_000_000.0


def _signed_fields(
    target: str, body: bytes, *, extra: Mapping[str, str] | None = None, **options: Any
) -> list[tuple[str, str]]:
    path, _, query = target.partition("?")
    amz_date = amz_date_of(options.pop("when", NOW))
    headers = {"Host": "xks.example.com", "X-Amz-Date": amz_date, **(extra or {})}
    region = options.pop("region", REGION)
    service = options.pop("service", SERVICE)
    signed, signature = sign(
        "POST",
        path,
        query,
        headers,
        body,
        secret=options.pop("secret", SECRET),
        amz_date=amz_date,
        region=region,
        service=service,
    )
    auth = authorization(options.pop("akid", AKID), amz_date, region, service, signed, signature)
    return [(name.lower(), value) for name, value in headers.items()] + [("authorization", auth)]


def _verify(target: str, fields: list[tuple[str, str]], body: bytes) -> str:
    return verify("POST", target, fields, body, secrets={AKID: SECRET}, region=REGION, now=NOW)


def test_the_verifier_accepts_what_the_documented_signing_produces() -> None:
    body = b'{"requestMetadata": {}}'
    target = "/prefix/kms/xks/v1/keys/key-1/encrypt"
    assert _verify(target, _signed_fields(target, body), body) == AKID
    # More signed fields, a value with inner spaces, a query string, a path needing encoding.
    extra = {"Content-Type": "application/json", "X-Custom": "  a   b  "}
    target = "/prefix/kms/xks/v1/keys/key%201/encrypt?b=2&a=1"
    assert _verify(target, _signed_fields(target, body, extra=extra), body) == AKID


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"secret": SECRET[::-1]}, "does not match"),
        ({"akid": "ZZZZZZZZZZZZZZZZZZZZ"}, "not one this proxy accepts"),
        ({"region": "eu-west-1"}, "credential scope"),
        ({"service": "kms"}, "credential scope"),
        ({"when": NOW - 301}, "from the server's clock"),
        ({"when": NOW + 301}, "from the server's clock"),
    ],
)
def test_the_verifier_refuses_a_wrong_credential_scope_or_time(change: dict[str, Any], said: str) -> None:
    body = b"{}"
    target = "/kms/xks/v1/health"
    with pytest.raises(SignatureRefused, match=said):
        _verify(target, _signed_fields(target, body, **change), body)


def test_the_verifier_refuses_what_was_changed_after_signing() -> None:
    body = b'{"plaintext": "AAAA"}'
    target = "/kms/xks/v1/keys/k/encrypt"
    fields = _signed_fields(target, body)
    with pytest.raises(SignatureRefused, match="does not match"):
        _verify(target, fields, b'{"plaintext": "AAAB"}')
    with pytest.raises(SignatureRefused, match="does not match"):
        _verify("/kms/xks/v1/keys/k/decrypt", fields, body)
    moved = [(name, "other.example.com" if name == "host" else value) for name, value in fields]
    with pytest.raises(SignatureRefused, match="does not match"):
        _verify(target, moved, body)
    unsigned_host = [
        (name, value.replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date")) for name, value in fields
    ]
    with pytest.raises(SignatureRefused, match="Host and X-Amz-Date"):
        _verify(target, unsigned_host, body)
    with pytest.raises(SignatureRefused, match="no Authorization"):
        _verify(target, [field for field in fields if field[0] != "authorization"], body)
    with pytest.raises(SignatureRefused, match="not an AWS4-HMAC-SHA256"):
        _verify(target, [*fields[:-1], ("authorization", "Basic dXNlcjpwYXNz")], body)
