"""Storage of managed objects through SQLAlchemy 2 (SQLite by default, PostgreSQL to scale out).

The engine talks to :class:`~.repository.Repository` only, in terms of the records in
:mod:`.records`. Key values arrive here already wrapped by custody; this layer never sees
plaintext key material.

:mod:`.repository` holds the SQLAlchemy code (imported on its own, so that the records stay
usable without a database driver); each worker process creates its own Repository after
forking.
"""

from __future__ import annotations

from .records import AttributeFilter, LocateQuery, ObjectRecord, StoredAttribute

__all__ = ["AttributeFilter", "LocateQuery", "ObjectRecord", "StoredAttribute"]
