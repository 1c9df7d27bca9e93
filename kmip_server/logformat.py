"""Log line formats: text (the default) and JSON, one object per line (``log_format = "json"``).

A JSON line holds ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``,
``process``, ``message``, and, for what is logged while a batch item runs, ``request_id``,
``identity``, ``operation`` and ``object_ids`` (those the item has touched so far), from
:data:`ITEM_CONTEXT`, which the engine sets around each item (engine/items.py); the audit
lines (logger strongroom.audit, DEBUG) carry the same fields. The request
id is the client connection's address (``host:port``), which is also the ``address`` of that
connection's records in the audit trail: one connection's log lines and audit records share it,
and the metrics' exemplars name it (admin/exemplars.py).

What is formatted is the message the code wrote; no format here adds values of requests or
responses, and the messages themselves name objects, never key material (logsafe.py).
"""

from __future__ import annotations

import contextvars
import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["ITEM_CONTEXT", "LOG_FORMATS", "TEXT_FORMAT", "ItemContext", "JsonFormatter", "formatter", "item_fields"]

TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")


@dataclasses.dataclass(slots=True)
class ItemContext:
    request_id: str | None
    identity: str
    operation: str
    touched: list[str]  # the message's touched objects: the item's are those from ``first`` on
    first: int = 0


#: The batch item being run on this thread, if any.
ITEM_CONTEXT: contextvars.ContextVar[ItemContext | None] = contextvars.ContextVar("strongroom_item", default=None)


_ITEM_FIELDS = ("request_id", "identity", "operation", "object_ids")


def item_fields(request_id: str | None, identity: str, operation: str, object_ids: Sequence[str]) -> dict[str, Any]:
    """``extra=`` for a line about an item logged after it ran (its audit record)."""
    return {"request_id": request_id, "identity": identity, "operation": operation, "object_ids": list(object_ids)}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        item = ITEM_CONTEXT.get()
        if item is not None:
            line["request_id"] = item.request_id
            line["identity"] = item.identity
            line["operation"] = item.operation
            line["object_ids"] = list(dict.fromkeys(item.touched[item.first :]))
        else:
            for name in _ITEM_FIELDS:  # given by the caller (item_fields), as the audit lines are
                if hasattr(record, name):
                    line[name] = getattr(record, name)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of ``log_format`` (one of LOG_FORMATS)."""
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT)
