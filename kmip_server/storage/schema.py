"""The SQL schema: SQLAlchemy Core tables, shared by SQLite and PostgreSQL.

Core rather than ORM because the Get path runs thousands of times a second per process and
the ORM's identity map and unit of work would cost more than the query itself.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Engine,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    insert,
    inspect,
    select,
    text,
)

#: Bumped whenever the tables change; ``create_schema`` refuses a store written by a newer version
#: and brings an older one up to date. 2: the (name, text_value) index leaves out rows without text.
#: 3: crypto_streams, the open streamed cryptographic operations. 4: rotation_lease, which
#: server process may rotate keys. 5: managed_objects.tenant (policy tenants), the audit trail's
#: tables and the approvals' pending requests.
SCHEMA_VERSION = 5

# An arbitrary constant: the PostgreSQL advisory lock that serialises concurrent create_schema
# calls (several workers starting at once would otherwise race on CREATE TABLE).
_SCHEMA_LOCK_ID = 0x5354524F  # "STRO"

metadata = MetaData()

managed_objects = Table(
    "managed_objects",
    metadata,
    Column("uid", Text, primary_key=True),
    # PostgreSQL fills it from an identity sequence. SQLite cannot autoincrement a column that
    # is not the INTEGER PRIMARY KEY, so there the repository takes it from ``sequence_counter``
    # (safe: SQLite writers are serialised by BEGIN IMMEDIATE). Unique, hence indexed, so
    # Locate's ORDER BY sequence walks an index.
    Column("sequence", BigInteger, Identity(), nullable=False, unique=True),
    Column("object_type", Integer, nullable=False),
    Column("owner", Text, nullable=False),
    Column("tenant", Text, nullable=False, server_default="default"),
    Column("state", Integer, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("algorithm", Integer, nullable=True),
    Column("length", Integer, nullable=True),
    Column("value_format", Integer, nullable=True),
    Column("wrapped_value", LargeBinary, nullable=True),
    Column("custody_key", Text, nullable=True),
)
Index("ix_managed_objects_owner", managed_objects.c.owner)
_tenant_index = Index("ix_managed_objects_tenant", managed_objects.c.tenant)
Index("ix_managed_objects_type_state", managed_objects.c.object_type, managed_objects.c.state)
# State alone: a Locate by State (the dated states included) without another condition.
Index("ix_managed_objects_state", managed_objects.c.state)

object_attributes = Table(
    "object_attributes",
    metadata,
    Column("uid", Text, ForeignKey("managed_objects.uid", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("text_value", Text, nullable=True),
    Column("number_value", BigInteger, nullable=True),
    PrimaryKeyConstraint("uid", "name", "idx"),
    # Clustered on (uid, name, idx) in SQLite: an object's attributes sit together, and the
    # table has no separate rowid b-tree to maintain.
    sqlite_with_rowid=False,
)
# text_pattern_ops lets PostgreSQL use the index for LIKE 'prefix%' whatever the database
# collation; the operator class still serves plain equality. Partial: most attribute values
# are numbers, dates, enumerations or structures, with no text, and an index entry for each
# of them was a quarter of the b-tree inserts of a Create. Every search on text_value (=,
# LIKE) implies it is not null, which is what lets both databases use a partial index.
_text_index = Index(
    "ix_object_attributes_name_text",
    object_attributes.c.name,
    object_attributes.c.text_value,
    postgresql_ops={"text_value": "text_pattern_ops"},
    sqlite_where=object_attributes.c.text_value.isnot(None),
    postgresql_where=object_attributes.c.text_value.isnot(None),
)
# Complete, not partial: it also serves searches by name alone or by name and whole value.
Index("ix_object_attributes_name_number", object_attributes.c.name, object_attributes.c.number_value)

schema_version = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
    CheckConstraint("id = 1", name="ck_schema_version_single_row"),
)

# SQLite only (see managed_objects.sequence): one row holding the last sequence handed out.
# A counter rather than MAX(sequence) + 1 so that deleting the newest object never lets its
# sequence number be handed out again.
sequence_counter = Table(
    "sequence_counter",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="ck_sequence_counter_single_row"),
)


# The streamed cryptographic operations in progress (see kmip_server/storage/streams.py): the
# state is sealed by custody, so nothing here is secret; expired rows are deleted as streams open.
crypto_streams = Table(
    "crypto_streams",
    metadata,
    Column("id", Text, primary_key=True),
    Column("owner", Text, nullable=False),
    Column("operation", Integer, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("sealed", LargeBinary, nullable=False),
)
Index("ix_crypto_streams_owner", crypto_streams.c.owner)

# One row: which process of which server rotates keys now, and until when (POSIX seconds) it
# may without renewing (see kmip_server/storage/rotation.py). ``holder`` is "" when free.
rotation_lease = Table(
    "rotation_lease",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("holder", Text, nullable=False),
    Column("expires", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="ck_rotation_lease_single_row"),
)


def _tables_for(dialect_name: str) -> list[Table]:
    # Every table declared on ``metadata``, including those other packages declare on it
    # (kmip_server/audit, kmip_server/approvals), once they are imported.
    return [t for t in metadata.sorted_tables if t is not sequence_counter or dialect_name == "sqlite"]


def create_schema(bind: Engine | Connection) -> None:
    """Create the tables and indexes if missing and record the schema version. Idempotent.

    Given an engine, runs in a transaction of its own; given a connection, in the caller's.
    Safe when several processes call it at once on the same store provided, on SQLite, the
    transaction began with BEGIN IMMEDIATE: use ``Repository.create_schema``, which does.
    Raises RuntimeError if the store was written by a newer schema version.
    """
    if isinstance(bind, Connection):
        _create_schema(bind)
        return
    with bind.begin() as conn:
        _create_schema(conn)


def _migrate(conn: Connection, stored: int) -> None:
    """Bring a store written by an older version up to date, in the caller's transaction."""
    if stored < 2:
        # Rebuilt as a partial index: only the rows with text stay in it.
        _text_index.drop(conn, checkfirst=True)
        _text_index.create(conn)
    if stored < 5 and "tenant" not in {c["name"] for c in inspect(conn).get_columns("managed_objects")}:
        # Objects stored before tenants existed belong to the default tenant.
        conn.execute(text("ALTER TABLE managed_objects ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'"))
        _tenant_index.create(conn, checkfirst=True)
    # 3 added crypto_streams, 4 rotation_lease and 5 the audit and approvals tables, which
    # create_all has just made (and _create_schema gives the lease its row).
    conn.execute(schema_version.update().where(schema_version.c.id == 1).values(version=SCHEMA_VERSION))


def _create_schema(conn: Connection) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        # Held until commit; the DDL below is transactional on PostgreSQL.
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SCHEMA_LOCK_ID})
    # SQLite DDL is transactional too, and BEGIN IMMEDIATE has already locked out the other
    # processes.
    metadata.create_all(conn, tables=_tables_for(dialect), checkfirst=True)

    stored = conn.execute(select(schema_version.c.version).where(schema_version.c.id == 1)).scalar()
    if stored is None:
        conn.execute(insert(schema_version).values(id=1, version=SCHEMA_VERSION))
    elif stored > SCHEMA_VERSION:
        raise RuntimeError(
            f"the store has schema version {stored}, newer than this software's {SCHEMA_VERSION}; upgrade Strongroom"
        )
    elif stored < SCHEMA_VERSION:
        _migrate(conn, stored)

    if conn.execute(select(rotation_lease.c.id).where(rotation_lease.c.id == 1)).scalar() is None:
        conn.execute(insert(rotation_lease).values(id=1, holder="", expires=0))
    if dialect == "sqlite":
        exists = conn.execute(select(sequence_counter.c.value).where(sequence_counter.c.id == 1)).scalar()
        if exists is None:
            conn.execute(insert(sequence_counter).values(id=1, value=0))
