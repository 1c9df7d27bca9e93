"""The typed KMIP model: messages, payloads, managed objects and attributes.

Every class is a frozen dataclass declared once; :mod:`.reader` and :mod:`.writer` generate
its TTLV reader and writer from the declaration on first use, and the generic walker of
:mod:`.base` handles the rare shapes and reports errors. Importing this package registers all
operation payloads with the batch-item decoder.
"""

from __future__ import annotations

from . import payloads  # noqa: F401  (registers the payload classes)
from .attributes import *  # noqa: F403
from .attributes import __all__ as _attributes_all
from .base import Struct, from_item, kchoice, kfield, structure, to_item, version_conflicts
from .messages import *  # noqa: F403
from .messages import __all__ as _messages_all
from .objects import *  # noqa: F403
from .objects import __all__ as _objects_all

__all__ = [
    "Struct",
    "from_item",
    "to_item",
    "kfield",
    "kchoice",
    "structure",
    "version_conflicts",
    *_attributes_all,
    *_messages_all,
    *_objects_all,
]
