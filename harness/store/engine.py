"""Opening a results database (a SQLite file, or a PostgreSQL server) and running units of work on it.

``open_database`` refuses, without writing a byte, a file that is not a healthy robint-bench database and migrates
an older schema in place; ``transaction`` turns database-level failures into one clear :class:`HarnessError`.
Storage functions take a session and never commit: callers own each unit of work with ``transaction(sessions)``.
PostgreSQL (``postgresql+psycopg://USER@HOST/DB``; ``postgresql://`` means the same) needs the optional driver
(``pip install -e .[postgres]``); concurrent first opens create the schema once (under an advisory lock).
``serialize_transactions`` makes the processes that share one run (torchrun ranks) take turns writing it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.schema import CreateIndex, CreateTable

from harness.core.config import DEFAULT_DB
from harness.core.errors import HarnessError
from harness.store.schema import SCHEMA_VERSION, Base, Meta

BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another's lock; override with sqlite:///path?timeout=SECONDS
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCHEMA_LOCK = 0x726F62696E74  # PostgreSQL advisory lock held while the schema is created ("robint")


def open_database(url: str, *, create: bool = True) -> sessionmaker[Session]:
    """Engine + sessionmaker for ``url``; creates the schema in a new database.

    With ``create=False`` (commands that only read) a SQLite file that does not exist is an error, and nothing is
    created. A missing directory is never created, except for the default ``results/`` database.

    Raises:
        HarnessError: a malformed URL or a missing driver; the file is not a SQLite database, belongs to another
            program, or cannot be opened; with ``create=False``, no database there.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise HarnessError(
            f"--db {url!r} is not a database URL", "use e.g. sqlite:///results/robint.db or postgresql://HOST/DB"
        ) from None
    if parsed.drivername == "postgresql":  # SQLAlchemy's default driver would be psycopg2; ours is psycopg 3
        parsed = parsed.set(drivername="postgresql+psycopg")
        url = parsed.render_as_string(hide_password=False)
    shown = parsed.render_as_string(hide_password=True)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    immutable = False
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not create and not path.exists():
            raise HarnessError(
                f"there is no database at {path} (--db {shown})",
                "check --db, or create one with `robint-bench run` or `robint-bench import results/archive`",
            )
        immutable = _check_sqlite_file(path)
        if create and not path.parent.is_dir():
            if url.split("?")[0] != DEFAULT_DB:
                raise HarnessError(
                    f"the directory {path.parent} of --db {shown} does not exist (nothing was created)",
                    f"correct the path, or create the directory first (mkdir -p {path.parent})",
                )
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HarnessError(f"cannot create {path.parent}: {exc.strerror}", "pass a writable --db") from None
    timeout = float(parsed.query.get("timeout", BUSY_TIMEOUT_S)) if is_sqlite else 0.0
    engine_url = url.split("?")[0] if is_sqlite else url
    if immutable:  # a healthy database on a read-only filesystem: read it without its (unwritable) WAL index
        engine_url = f"sqlite:///file:{quote(str(Path(parsed.database).resolve()))}?mode=ro&immutable=1&uri=true"
    try:
        engine = (
            create_engine(engine_url, connect_args={"timeout": timeout})
            if is_sqlite
            else create_engine(engine_url, pool_pre_ping=True)  # a server may drop connections idle for a chunk
        )
    except ImportError as exc:  # the dialect's DBAPI driver is not installed
        raise HarnessError(
            f"--db {shown} needs the Python driver {exc.name or parsed.drivername!r}, which is not installed",
            "pip install -e .[postgres]"
            if parsed.get_backend_name() == "postgresql"
            else f"install the {parsed.drivername} driver package ({exc.name}) into robint-bench's environment",
        ) from None
    except NoSuchModuleError:
        raise HarnessError(
            f"--db {shown}: SQLAlchemy knows no database kind {parsed.drivername!r}",
            "use sqlite:///PATH or postgresql://HOST/DB",
        ) from None
    if is_sqlite:
        event.listen(engine, "connect", partial(_sqlite_pragmas, timeout=timeout, wal=not immutable))
    try:
        _ensure_schema(engine, create=create and not immutable, migrate=not immutable)
    except OperationalError as exc:
        if not is_sqlite:
            reason = (str(exc.orig).strip().splitlines() or ["no reason given"])[0]
            raise HarnessError(
                f"cannot connect to database {shown}: {reason}",
                "check that the server is running and the URL's host, port, user and database name",
            ) from None
        raise HarnessError(f"cannot open database {shown}: {exc.orig}", "check the path and permissions") from None
    except DatabaseError as exc:
        raise HarnessError(f"database {shown} is damaged: {exc.orig}", "restore it or pass another --db") from None
    return sessionmaker(engine, expire_on_commit=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, timeout: float, wal: bool = True) -> None:
    cur = dbapi_connection.cursor()
    cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    cur.execute("PRAGMA foreign_keys = ON")
    mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
    if wal and mode != "wal":
        cur.execute("PRAGMA journal_mode = WAL")
    cur.close()


def _check_sqlite_file(path: Path) -> bool:
    """Refuse, without writing a byte, a file that is not a healthy robint-bench SQLite database; True when it is
    healthy but on a read-only filesystem, where it can only be read as immutable."""
    if path.is_dir():
        raise HarnessError(f"--db {path} is a directory, not a database file", "pass e.g. sqlite:///results/robint.db")
    if not path.exists() or path.stat().st_size == 0:
        return False
    with open(path, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise HarnessError(
            f"{path} is not a SQLite database (it was left untouched)", "pass another --db or move the file away"
        )
    immutable = False
    try:
        try:
            tables, version = _inspect_file(path, immutable=False)
        except sqlite3.OperationalError as exc:
            if "unable to open" not in str(exc) or os.access(path.parent, os.W_OK):
                raise
            wal = Path(f"{path}-wal")
            if wal.exists() and wal.stat().st_size > 0:
                raise HarnessError(
                    f"database {path} has changes in {wal.name} that a read-only filesystem keeps from being read",
                    "copy the database with its -wal file to a writable place and pass that as --db",
                ) from None
            tables, version = _inspect_file(path, immutable=True)
            immutable = True
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return False  # a writer holds it; the normal path waits for the lock and reports it clearly
        if "disk i/o" in str(exc).lower():  # e.g. no room for the WAL's shared-memory file next to it
            raise HarnessError(
                f"the results disk is full or failing: SQLite could not open {path} ({exc}); nothing was written",
                "free disk space and run again",
            ) from None
        raise HarnessError(
            f"database {path} cannot be read ({exc}); it was left untouched",
            "restore it from a backup or pass another --db",
        ) from None
    except sqlite3.DatabaseError as exc:
        raise HarnessError(
            f"database {path} is damaged ({exc}); it was left untouched",
            "restore it from a backup or pass another --db",
        ) from None
    if tables and "robint_meta" not in tables:
        raise HarnessError(
            f"database {path} belongs to another program (tables: {', '.join(sorted(tables)[:5])})",
            "pass a --db of robint-bench's own; the file was left untouched",
        )
    if version is not None and (not str(version).isdigit() or int(version) > SCHEMA_VERSION):
        raise HarnessError(
            f"database {path} has schema version {version}; this robint-bench reads versions 1 to "
            f"{SCHEMA_VERSION} (the file was left untouched)",
            "upgrade robint-bench or use another --db",
        )
    return immutable


def _inspect_file(path: Path, *, immutable: bool) -> tuple[set[str], str | None]:
    """The tables and schema version of a SQLite file, opened read-only, after its quick integrity check."""
    uri = f"file:{quote(str(path))}?mode=ro" + ("&immutable=1" if immutable else "")
    with closing(sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S)) as con:
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("integrity check failed")
        version = None
        if "robint_meta" in tables:
            row = con.execute("SELECT value FROM robint_meta WHERE key = 'schema_version'").fetchone()
            version = row[0] if row else None
    return tables, version


def _ensure_schema(engine: Engine, *, create: bool, migrate: bool = True) -> None:
    tables = set(inspect(engine).get_table_names())
    ours = set(Base.metadata.tables)
    if not tables:
        if not create:
            raise HarnessError(f"database {engine.url} is empty", "run `robint-bench run` first")
        try:
            if engine.dialect.name == "sqlite":
                _create_sqlite_schema(engine)
                return
            with engine.begin() as conn:
                if engine.dialect.name == "postgresql":  # DDL is transactional there: create under a lock, once
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
                    if inspect(conn).get_table_names():
                        raise _CreatedMeanwhile
                Base.metadata.create_all(conn)
                conn.execute(Meta.__table__.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            return
        except (OperationalError, IntegrityError, sqlite3.IntegrityError, _CreatedMeanwhile):  # created meanwhile
            tables = set(inspect(engine).get_table_names())
    if "robint_meta" not in tables:
        raise HarnessError(
            f"database {engine.url} belongs to another program (tables: {', '.join(sorted(tables)[:5])})",
            "pass a --db of robint-bench's own; the file was left untouched",
        )
    found = _schema_version(engine)
    if found is None or found > SCHEMA_VERSION:
        raise HarnessError(
            f"database {engine.url} has schema version {found if found is not None else '?'}; "
            f"this robint-bench reads versions 1 to {SCHEMA_VERSION}",
            "upgrade robint-bench or use another --db",
        )
    if found < SCHEMA_VERSION:
        if not migrate:
            raise HarnessError(
                f"database {engine.url} has the older schema version {found} and sits on a read-only filesystem, "
                "where it cannot be migrated",
                "copy it to a writable place and pass that as --db",
            )
        from harness.store.migrations import upgrade

        upgrade(engine)
    elif not ours <= set(inspect(engine).get_table_names()):
        raise HarnessError(
            f"database {engine.url} lacks tables of schema {SCHEMA_VERSION}", "restore it or use another --db"
        )


def _create_sqlite_schema(engine: Engine) -> None:
    """Create every table and the version row in one IMMEDIATE transaction: pysqlite would commit each CREATE TABLE
    on its own, and a second process opening the file meanwhile would see a half-made schema."""
    raw = engine.raw_connection()
    con = raw.driver_connection
    try:
        con.isolation_level = None  # transactions by hand
        try:
            con.execute("BEGIN IMMEDIATE")  # waits (busy timeout) for a process that is creating it
        except sqlite3.OperationalError as exc:
            raise OperationalError("BEGIN IMMEDIATE", None, exc) from None
        try:
            if con.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]:
                raise _CreatedMeanwhile
            for table in Base.metadata.sorted_tables:
                con.execute(str(CreateTable(table).compile(dialect=engine.dialect)))
                for index in table.indexes:
                    con.execute(str(CreateIndex(index).compile(dialect=engine.dialect)))
            con.execute("INSERT INTO robint_meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.isolation_level = ""
        raw.close()


def _schema_version(engine: Engine) -> int | None:
    with Session(engine) as s:
        version = s.get(Meta, "schema_version")
    return int(version.value) if version is not None and version.value.isdigit() else None


class _CreatedMeanwhile(Exception):
    """Another process created the schema while this one waited for the lock (the transaction rolls back)."""


# --- writing -----------------------------------------------------------------------------------------


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work; database-level failures become one clear HarnessError (the transaction rolls back)."""
    try:
        with sessions.begin() as s:
            yield s
    except OperationalError as exc:
        raise _database_error(exc) from None
    except DatabaseError as exc:
        raise HarnessError(
            f"the database is damaged: {exc.orig}", "restore it from a backup or use another --db"
        ) from None


def _database_error(exc: OperationalError) -> HarnessError:
    text = str(exc.orig).lower()
    if "locked" in text or "busy" in text:
        return HarnessError(
            "the database is locked by another process for longer than the busy timeout",
            "retry when the other process is done (nothing was written)",
        )
    if "disk is full" in text or "disk i/o" in text:
        return HarnessError("the results disk is full (nothing was written)", "free disk space and run again")
    if "connection" in text and ("server" in text or "closed" in text or "refused" in text):
        return HarnessError(
            f"lost the connection to the database server: {(str(exc.orig).strip().splitlines() or ['?'])[0]}",
            "check that the server is running, then run the same command again (it resumes)",
        )
    if "readonly" in text or "read-only" in text:
        return HarnessError(
            "the database or its directory is read-only (nothing was written)",
            "make the results directory writable or pass another --db",
        )
    return HarnessError(f"database error: {exc.orig}", "check the --db path and permissions")


def serialize_transactions(sessions: sessionmaker[Session], name: str) -> None:
    """From now on every transaction of ``sessions`` holds an exclusive lock for ``name`` from its first statement to
    its end, so processes that read-modify-write one row (the torchrun ranks of one run, each committing chunks into
    the run's details) take turns instead of losing each other's updates.

    SQLite: ``BEGIN IMMEDIATE`` (the database's write lock; waits up to the busy timeout). PostgreSQL: a
    transaction-level advisory lock on a 64-bit key derived from ``name``. Other processes' transactions (reports,
    other runs) are not affected on PostgreSQL, and wait as for any writer on SQLite.
    """
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)

    def lock(_session: Session, _transaction: Any, connection: Any) -> None:
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        elif connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    event.listen(sessions, "after_begin", lock)
