"""Opening a results database (SQLite or any SQLAlchemy URL) and running units of work on it.

``open_database`` refuses, without writing a byte, a file that is not a healthy robint-bench database and migrates
an older schema in place; ``transaction`` turns database-level failures into one clear :class:`HarnessError`.
Storage functions take a session and never commit: callers own each unit of work with ``transaction(sessions)``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from harness.config import DEFAULT_DB
from harness.errors import HarnessError
from harness.store.schema import SCHEMA_VERSION, Base, Meta

BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another's lock; override with sqlite:///path?timeout=SECONDS
_SQLITE_MAGIC = b"SQLite format 3\x00"


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
    shown = parsed.render_as_string(hide_password=True)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not create and not path.exists():
            raise HarnessError(
                f"there is no database at {path} (--db {shown})",
                "check --db, or create one with `robint-bench run` or `robint-bench import results/archive`",
            )
        _check_sqlite_file(path)
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
    try:
        engine = create_engine(
            url.split("?")[0] if is_sqlite else url, connect_args={"timeout": timeout} if is_sqlite else {}
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
        event.listen(engine, "connect", partial(_sqlite_pragmas, timeout=timeout))
    try:
        _ensure_schema(engine, create=create)
    except OperationalError as exc:
        raise HarnessError(f"cannot open database {shown}: {exc.orig}", "check the path and permissions") from None
    except DatabaseError as exc:
        raise HarnessError(f"database {shown} is damaged: {exc.orig}", "restore it or pass another --db") from None
    return sessionmaker(engine, expire_on_commit=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, timeout: float) -> None:
    cur = dbapi_connection.cursor()
    cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    cur.execute("PRAGMA foreign_keys = ON")
    mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal":
        cur.execute("PRAGMA journal_mode = WAL")
    cur.close()


def _check_sqlite_file(path: Path) -> None:
    """Refuse, without writing a byte, a file that is not a healthy robint-bench SQLite database."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise HarnessError(
            f"{path} is not a SQLite database (it was left untouched)", "pass another --db or move the file away"
        )
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)) as con:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if con.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("integrity check failed")
            version = None
            if "robint_meta" in tables:
                row = con.execute("SELECT value FROM robint_meta WHERE key = 'schema_version'").fetchone()
                version = row[0] if row else None
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return  # a writer holds it; the normal path waits for the lock and reports it clearly
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


def _ensure_schema(engine: Engine, *, create: bool) -> None:
    tables = set(inspect(engine).get_table_names())
    ours = set(Base.metadata.tables)
    if not tables:
        if not create:
            raise HarnessError(f"database {engine.url} is empty", "run `robint-bench run` first")
        try:
            with engine.begin() as conn:
                Base.metadata.create_all(conn)
                conn.execute(Meta.__table__.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            return
        except (OperationalError, IntegrityError):  # another process created it at the same moment
            tables = set(inspect(engine).get_table_names())
    if "robint_meta" not in tables:
        raise HarnessError(
            f"database {engine.url} belongs to another program (tables: {', '.join(sorted(tables)[:5])})",
            "pass a --db of robint-bench's own; the file was left untouched",
        )
    with Session(engine) as s:
        version = s.get(Meta, "schema_version")
    found = int(version.value) if version is not None and version.value.isdigit() else None
    if found is None or found > SCHEMA_VERSION:
        raise HarnessError(
            f"database {engine.url} has schema version {found if found is not None else '?'}; "
            f"this robint-bench reads versions 1 to {SCHEMA_VERSION}",
            "upgrade robint-bench or use another --db",
        )
    if found < SCHEMA_VERSION:
        from harness.store.migrations import upgrade

        upgrade(engine)
    elif not ours <= set(inspect(engine).get_table_names()):
        raise HarnessError(
            f"database {engine.url} lacks tables of schema {SCHEMA_VERSION}", "restore it or use another --db"
        )


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
    if "readonly" in text or "read-only" in text:
        return HarnessError(
            "the database or its directory is read-only (nothing was written)",
            "make the results directory writable or pass another --db",
        )
    return HarnessError(f"database error: {exc.orig}", "check the --db path and permissions")
