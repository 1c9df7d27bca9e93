"""The canonical bytes an audit record's hash covers are exactly the compact JSON array the
audit/records.py docstring specifies: the fast builder against json itself."""

from __future__ import annotations

import json
import random

from kmip_server.audit.records import canonical_fields, encode_names

AWKWARD = [
    "",
    "plain",
    'quote " and backslash \\',
    "control \x00\x01\x1f and \t\n\r\b\f",
    "non-ASCII é ü 鍵 🔑",
    "\u2028\u2029 line separators",
    ']",[null]',
]


def _reference(*fields: object) -> bytes:
    values = list(fields)
    values[7], values[8] = list(values[7]), list(values[8])  # type: ignore[call-overload]
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()


def test_canonical_fields_match_json_byte_for_byte() -> None:
    rng = random.Random(17)
    for _ in range(500):
        pick = rng.choice
        strings = [pick(AWKWARD) for _ in range(5)]
        fields = (
            rng.randrange(1, 10**12),
            rng.randrange(0, 2**62),
            strings[0],
            strings[1],
            pick([None, *AWKWARD]),
            pick([None, "ab" * 32]),
            strings[2],
            tuple(rng.sample(AWKWARD, rng.randrange(0, 4))),
            tuple(rng.sample(AWKWARD, rng.randrange(0, 3))),
            strings[3],
            pick([None, *AWKWARD]),
            pick([None, *AWKWARD]),
        )
        assert canonical_fields(*fields) == _reference(*fields)  # type: ignore[arg-type]


def test_stored_name_lists_are_json() -> None:
    for names in ((), ("uid-1",), tuple(AWKWARD)):
        assert json.loads(encode_names(names)) == list(names)
        assert encode_names(names) == json.dumps(list(names), separators=(",", ":"), ensure_ascii=False)
