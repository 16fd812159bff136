"""Schema migrations, applied in place when a database made by an older robint-bench is opened.

A documented equivalent of alembic for a small schema: ``MIGRATIONS[v]`` upgrades version ``v - 1`` to ``v``
using portable DDL (SQLite and PostgreSQL). All steps run in one transaction that first takes the write lock
and re-reads the version, so concurrent openers upgrade exactly once and a failure leaves the old schema.
Adding a migration: bump ``store.schema.SCHEMA_VERSION``, add the function here, and add a test that opens a
database of the previous version (tests/harness/data/schema_v<N>.sql) and checks its rows survive.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

from harness.core.errors import HarnessError


def _v2(conn: Connection) -> None:
    """Run ownership (for resuming interrupted runs) and the artifacts table."""
    from harness.store.schema import ArtifactRecord

    for column, kind in (
        ("owner_host", "VARCHAR(255)"),
        ("owner_pid", "INTEGER"),
        ("owner_start", "VARCHAR(64)"),
        ("heartbeat_at", "TIMESTAMP"),
    ):
        conn.execute(text(f"ALTER TABLE runs ADD COLUMN {column} {kind}"))
    ArtifactRecord.__table__.create(conn)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _v2}


def upgrade(engine: Engine) -> int:
    """Bring the database to ``store.schema.SCHEMA_VERSION``; returns the version it started from."""
    from harness.store.schema import SCHEMA_VERSION

    with engine.begin() as conn:
        # a no-op write takes the database's write lock before the version is read (SQLite and PostgreSQL)
        conn.execute(text("UPDATE robint_meta SET value = value WHERE key = 'schema_version'"))
        start = int(conn.execute(text("SELECT value FROM robint_meta WHERE key = 'schema_version'")).scalar_one())
        for version in range(start + 1, SCHEMA_VERSION + 1):
            if version not in MIGRATIONS:
                raise HarnessError(f"no migration to schema version {version}", "this is a bug; please report it")
            MIGRATIONS[version](conn)
        conn.execute(text("UPDATE robint_meta SET value = :v WHERE key = 'schema_version'"), {"v": str(SCHEMA_VERSION)})
    return start
