"""New objects' Unique Identifiers: RFC 9562 version 7 UUIDs, ordered by creation time."""

from __future__ import annotations

import time
import uuid

from kmip_server.operations.creation import new_unique_identifier


def test_identifiers_are_canonical_version_7_uuids() -> None:
    for _ in range(2000):
        text = new_unique_identifier()
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical lower-case 8-4-4-4-12 form
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_identifiers_carry_the_time_and_sort_by_it() -> None:
    before = time.time_ns() // 1_000_000
    first = new_unique_identifier()
    time.sleep(0.002)
    second = new_unique_identifier()
    after = time.time_ns() // 1_000_000
    millis = uuid.UUID(first).int >> 80
    assert before <= millis <= after
    assert first < second  # later identifiers sort after earlier ones (index appends)
    assert len({new_unique_identifier() for _ in range(10_000)}) == 10_000
