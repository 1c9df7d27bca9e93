"""The store's side of automatic key rotation: the lease, the keys due, the rotations done.

**The lease** (table ``rotation_lease``, one row): the server process that may rotate keys
now, and until when. Every worker of every server sharing the store tries to take it at each
check; :func:`take_lease` is one conditional UPDATE (taken when free, expired or already
ours), so on PostgreSQL two contenders are decided by the row lock and READ COMMITTED's
re-check of the condition, and on SQLite by the writer lock. The holder renews it at each
check and gives it up when it stops; one that dies loses it when it expires. The lease only
keeps the others idle: that a key is rotated once is ensured per key, under its row lock
(kmip_server/rotation/scheduler.py), so a holder whose lease ran out mid-batch (a long pause)
cannot rotate a key a second time either.

**Due keys** (:func:`due_keys`): the rule of :func:`kmip_server.rotation.lineage.due_since`
in one SELECT, driven by the (name, number_value) index from the rows of Rotate Automatic =
True, which replaced keys no longer have (they are set False when a key is replaced), so the
search grows with the keys in rotation, not with their history.

**Rotations done** (:func:`recent_rotations`): the replaced keys by Rotate Date, newest
first, with the Replacement Object Link that names their successor.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, cast, exists, or_, select, update

from kmip_client.protocol.spec.enums import LinkType, ObjectType, State

from .schema import managed_objects, object_attributes, rotation_lease

_o = managed_objects.c
_a = object_attributes.c

#: The object types the server rotates: a Symmetric Key by Re-key, a key pair (named by its
#: Private Key, whose schedule it follows) by Re-key Key Pair.
ROTATED_TYPES = (int(ObjectType.SYMMETRIC_KEY), int(ObjectType.PRIVATE_KEY))
_ACTIVE, _PRE_ACTIVE = int(State.ACTIVE), int(State.PRE_ACTIVE)
_REPLACEMENT = int(LinkType.REPLACEMENT_OBJECT_LINK)


@dataclasses.dataclass(frozen=True, slots=True)
class DueKey:
    uid: str
    owner: str
    object_type: int
    due_since: int  # POSIX seconds: its Initial Date + Rotate Interval, or its later Activation Date
    tenant: str = "default"


@dataclasses.dataclass(frozen=True, slots=True)
class Rotation:
    old_uid: str
    new_uid: str
    rotated: int  # POSIX seconds: the old key's Rotate Date


# ---------------------------------------------------------------------------- the lease


def take_lease(conn: Connection, holder: str, now: int, seconds: int) -> bool:
    """Take or renew the lease for ``holder`` until ``now + seconds``: whether it is ours."""
    statement = (
        update(rotation_lease)
        .where(rotation_lease.c.id == 1, or_(rotation_lease.c.holder == holder, rotation_lease.c.expires <= now))
        .values(holder=holder, expires=now + seconds)
    )
    return bool(conn.execute(statement).rowcount)


def release_lease(conn: Connection, holder: str) -> None:
    """Give the lease up if ``holder`` has it, so another process need not wait for it to expire."""
    conn.execute(
        update(rotation_lease)
        .where(rotation_lease.c.id == 1, rotation_lease.c.holder == holder)
        .values(holder="", expires=0)
    )


def lease(conn: Connection) -> tuple[str, int] | None:
    """(holder, expires) of the lease (holder "" when free); None if the row is missing."""
    row = conn.execute(select(rotation_lease.c.holder, rotation_lease.c.expires)).first()
    return None if row is None else (row[0], row[1])


# ---------------------------------------------------------------------------- due keys


def _number(name: str) -> Any:
    """The number of ``name``'s first instance for the object of the outer row (correlated)."""
    return select(_a.number_value).where(_a.uid == _o.uid, _a.name == name).order_by(_a.idx).limit(1).scalar_subquery()


def due_keys(conn: Connection, now: int, limit: int) -> list[DueKey]:
    """The keys due for rotation at ``now``, longest due first, at most ``limit``."""
    automatic = object_attributes.alias("rotate_automatic")
    interval = object_attributes.alias("rotate_interval")
    initial = object_attributes.alias("initial_date")
    activation = _number("Activation Date")
    deactivation = _number("Deactivation Date")
    due = cast(initial.c.number_value + interval.c.number_value, BigInteger)
    replaced = exists().where(_a.uid == _o.uid, _a.name == "Link", _a.number_value == _REPLACEMENT)
    joined = (
        managed_objects.join(
            automatic,
            and_(automatic.c.uid == _o.uid, automatic.c.name == "Rotate Automatic", automatic.c.number_value == 1),
        )
        .join(interval, and_(interval.c.uid == _o.uid, interval.c.name == "Rotate Interval"))
        .join(initial, and_(initial.c.uid == _o.uid, initial.c.name == "Initial Date"))
    )
    statement = (
        select(_o.uid, _o.owner, _o.object_type, due, activation, _o.tenant)
        .select_from(joined)
        .where(
            _o.object_type.in_(ROTATED_TYPES),
            _o.wrapped_value.isnot(None),
            interval.c.number_value > 0,
            due <= now,
            # Active now: the rule of kmip_server.objects.lifecycle.effective_state.
            or_(_o.state == _ACTIVE, and_(_o.state == _PRE_ACTIVE, activation <= now)),
            or_(deactivation.is_(None), deactivation > now),
            ~replaced,
        )
        .order_by(due, _o.uid)
        .limit(limit)
    )
    return [
        DueKey(uid, owner, object_type, max(int(due_at), int(activated or 0)), tenant)
        for uid, owner, object_type, due_at, activated, tenant in conn.execute(statement)
    ]


# ---------------------------------------------------------------------------- rotations done


def recent_rotations(conn: Connection, limit: int) -> list[Rotation]:
    """The latest ``limit`` replacements (automatic or by Re-key), newest first."""
    rotated = object_attributes.alias("rotate_date")
    link = object_attributes.alias("replacement")
    statement = (
        select(rotated.c.uid, link.c.text_value, rotated.c.number_value)
        .select_from(
            rotated.join(
                link, and_(link.c.uid == rotated.c.uid, link.c.name == "Link", link.c.number_value == _REPLACEMENT)
            )
        )
        .where(rotated.c.name == "Rotate Date")
        .order_by(rotated.c.number_value.desc(), rotated.c.uid)
        .limit(limit)
    )
    return [Rotation(old, new or "", int(when)) for old, new, when in conn.execute(statement)]
