"""The table of open cryptographic streams (Encrypt, Sign, MAC, Hash ... sent in parts).

A row per stream: its Correlation Value (hex), the identity that opened it, the operation,
when it expires, and its state sealed by custody. The database never sees a stream's
plaintext, key or IV: :mod:`kmip_server.operations.crypto.streams` seals the state under the
HSM master key before it gets here. Kept in the store, not in a worker's memory, so that the
next part may arrive on another connection, at another worker process or another node.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from .schema import crypto_streams


def load(conn: Connection, stream_id: str) -> tuple[str, int, int, bytes] | None:
    """(owner, operation, expires, sealed) of stream ``stream_id``, or None.

    The row is locked until the transaction ends (PostgreSQL; SQLite's writer holds the whole
    database): two parts of one stream sent at once, to two nodes, run one after the other
    instead of both continuing from the same state."""
    row = conn.execute(
        select(crypto_streams.c.owner, crypto_streams.c.operation, crypto_streams.c.expires, crypto_streams.c.sealed)
        .where(crypto_streams.c.id == stream_id)
        .with_for_update()
    ).first()
    return None if row is None else (row[0], row[1], row[2], row[3])


def open_count(conn: Connection, owner: str, now: int) -> int:
    """How many unexpired streams ``owner`` has open."""
    stmt = select(func.count()).where(and_(crypto_streams.c.owner == owner, crypto_streams.c.expires > now))
    return int(conn.execute(stmt).scalar_one())


def put(
    conn: Connection, stream_id: str, owner: str, operation: int, expires: int, sealed: bytes, *, new: bool
) -> None:
    if new:
        values = {"id": stream_id, "owner": owner, "operation": operation, "expires": expires, "sealed": sealed}
        conn.execute(insert(crypto_streams).values(**values))
    else:
        conn.execute(
            update(crypto_streams).where(crypto_streams.c.id == stream_id).values(expires=expires, sealed=sealed)
        )


def remove(conn: Connection, stream_id: str) -> None:
    conn.execute(delete(crypto_streams).where(crypto_streams.c.id == stream_id))


def purge_expired(conn: Connection, now: int) -> int:
    """Delete the expired streams; how many there were."""
    return conn.execute(delete(crypto_streams).where(crypto_streams.c.expires <= now)).rowcount or 0
