"""Logs in JSON, at DEBUG, through a whole key lifecycle, hold no key material.

A real server (2 workers, SQLite, SoftHSM2) with ``--log-level DEBUG --log-format json``; the
client registers a key whose bytes the test knows, reads it back, encrypts with it, rotates
(re-keys) it, revokes and destroys it, and makes a few requests fail. Then every stderr line
must be one JSON object, the items' lines carry their request id, identity and operation,
and no form of the key bytes (raw, hex, base64) nor the plaintext appears anywhere.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from kmip_client import Client
from kmip_client.protocol.errors import KmipError
from tests.support.server_process import LOOPBACK, free_port, running_server, strongroom_init


def _forms(secret: bytes) -> list[bytes]:
    text = [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode(),
    ]
    # Also any 12-byte window of the value: a log that printed part of a key is as bad.
    windows = [secret[i : i + 12] for i in range(0, len(secret) - 11, 4)]
    return [secret, *windows, *(t.encode() for t in text), *(w.hex().encode() for w in windows)]


def test_a_lifecycle_at_debug_logs_no_secret(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    tls = strongroom_init(data_dir)
    key = os.urandom(32)
    plaintext = b"the plaintext must not be logged either: " + os.urandom(16).hex().encode()
    port = free_port()
    with running_server(
        data_dir, port, workers=2, extra_args=["--log-level", "DEBUG", "--log-format", "json"]
    ) as server:
        with Client(f"{LOOPBACK}:{port}", ca=tls.ca, cert=tls.cert, key=tls.key) as client:
            uid = client.register_key(key, name="logged-key")
            client.activate(uid)
            assert client.get(uid).value == key
            sealed = client.encrypt(uid, plaintext, mode="GCM", random_iv=True)
            assert client.decrypt(uid, sealed.data, iv=sealed.iv, tag=sealed.tag, mode="GCM") == plaintext
            client.get_attributes(uid)
            newer = client.rekey(uid)
            client.revoke(uid)
            with pytest.raises(KmipError):
                client.encrypt(uid, plaintext, mode="GCM", random_iv=True)  # deactivated: refused and logged
            with pytest.raises(KmipError):
                client.destroy("no-such-object")
            client.destroy(uid)
            client.revoke(newer)
            client.destroy(newer)
        log = server.stderr_path.read_bytes()
        server.stop_cleanly()
        log = server.stderr_path.read_bytes()

    lines = [line for line in log.splitlines() if line.strip()]
    assert len(lines) > 15, log[-2000:]
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in parsed)
    assert any(entry["level"] == "DEBUG" for entry in parsed)
    items = [entry for entry in parsed if "operation" in entry]
    # The audit lines (and anything logged while an item ran) say whose request it was.
    assert {entry["operation"] for entry in items} >= {"Register", "Get", "Encrypt", "Re-key", "Revoke", "Destroy"}
    assert all(entry["identity"] == "admin" and entry["request_id"].startswith("127.0.0.1:") for entry in items)
    assert any(uid in entry["object_ids"] for entry in items)
    for form in [*_forms(key), plaintext, plaintext[-32:]]:
        assert form not in log, f"the log holds secret material ({form[:8]!r}...)"
