"""Storage of managed objects through SQLAlchemy 2 (SQLite by default, PostgreSQL to scale out).

The engine talks to :class:`~.repository.Repository` only, in terms of the records in
:mod:`.records`. Key values arrive here already wrapped by custody; this layer never sees
plaintext key material.
"""

from __future__ import annotations

from .records import AttributeFilter, LocateQuery, ObjectRecord, StoredAttribute

__all__ = ["AttributeFilter", "LocateQuery", "ObjectRecord", "StoredAttribute"]
