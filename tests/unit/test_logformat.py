"""The JSON log format: one object per line, with the running item's fields."""

from __future__ import annotations

import json
import logging
import sys

from kmip_server.logformat import ITEM_CONTEXT, ItemContext, JsonFormatter, formatter, item_fields


def _record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    info = sys.exc_info() if exc else None
    record = logging.LogRecord("strongroom.engine", logging.WARNING, __file__, 1, message, args, info)
    record.__dict__.update(extra)
    return record


def test_a_line_is_one_json_object_with_the_message_formatted() -> None:
    line = JsonFormatter().format(_record("stored %d objects\nfor %s", 3, "alice"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "stored 3 objects\nfor alice"
    assert (entry["level"], entry["logger"]) == ("WARNING", "strongroom.engine")
    assert entry["time"].endswith("Z") and "T" in entry["time"]
    assert "operation" not in entry


def test_lines_logged_while_an_item_runs_name_it_and_its_objects() -> None:
    touched = ["earlier-item-object"]
    token = ITEM_CONTEXT.set(ItemContext("10.0.0.5:41000", "alice", "Get", touched, first=1))
    try:
        touched.extend(["k1", "k1", "k2"])
        entry = json.loads(JsonFormatter().format(_record("looked")))
    finally:
        ITEM_CONTEXT.reset(token)
    assert entry["request_id"] == "10.0.0.5:41000"
    assert (entry["identity"], entry["operation"], entry["object_ids"]) == ("alice", "Get", ["k1", "k2"])
    assert "operation" not in json.loads(JsonFormatter().format(_record("after")))


def test_an_audit_line_carries_the_fields_it_is_given() -> None:
    entry = json.loads(JsonFormatter().format(_record("recorded", **item_fields("h:1", "bob", "Destroy", ("u",)))))
    assert (entry["request_id"], entry["identity"], entry["operation"], entry["object_ids"]) == (
        "h:1",
        "bob",
        "Destroy",
        ["u"],
    )


def test_exceptions_stay_inside_the_object() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        line = JsonFormatter().format(_record("failed", exc=True))
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


def test_text_stays_the_default_format() -> None:
    assert not isinstance(formatter("text"), JsonFormatter)
    assert isinstance(formatter("json"), JsonFormatter)
