"""The ``[rotation]`` settings: the server's automatic key rotation (kmip_server/rotation/).

Kept apart from :mod:`kmip_server.config`, which reads the file and calls :func:`read`.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class RotationSettings:
    # Whether the workers look for keys due for rotation (KMIP 2.1 Rotate Automatic) at all.
    enabled: bool = True
    # How often, in seconds; and at most how many keys one look rotates (the rest wait for the
    # next one), so that a backlog is worked off without crowding out the clients' requests.
    check_seconds: int = 60
    batch_size: int = 50


KEYS = tuple(field.name for field in dataclasses.fields(RotationSettings))
_DEFAULTS = RotationSettings()

_COMMENTS: dict[str, tuple[str, ...]] = {
    "enabled": (
        "Rotate the keys that ask for it (KMIP 2.1 Rotate Automatic and Rotate Interval): once a key",
        "has been Active for its Rotate Interval since its Initial Date, the server re-keys it. One",
        "worker of one server at a time does it (a lease in the database), each key exactly once.",
    ),
    "check_seconds": ("How often to look for keys that are due.",),
    "batch_size": ("At most this many keys are rotated per look; the rest wait for the next one.",),
}


def read(table: Any) -> RotationSettings:
    """The settings from the ``[rotation]`` table (a ``config._Table``)."""
    return RotationSettings(
        enabled=table.boolean("enabled", _DEFAULTS.enabled),
        check_seconds=table.integer("check_seconds", _DEFAULTS.check_seconds, (1, 86_400)),
        batch_size=table.integer("batch_size", _DEFAULTS.batch_size, (1, 10_000)),
    )


def render(comment: Any, value: Any) -> list[str]:
    """The ``[rotation]`` section of the default configuration file."""
    out = ["", "[rotation]"]
    for name in KEYS:
        out += [*comment(_COMMENTS[name]), f"{name} = {value(getattr(_DEFAULTS, name))}"]
    return out
