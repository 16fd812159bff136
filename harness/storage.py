"""SQLite/SQLAlchemy storage: models, runs, per-example results and metric rows.

Storage functions take a session and never commit: callers own each unit of work with
``with sessions.begin() as s:``. Only runs with status ``complete`` are results.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from harness.errors import HarnessError

DEFAULT_DB = "sqlite:///results/robint.db"
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another's lock; override with sqlite:///path?timeout=SECONDS
SCHEMA_VERSION = 2
_SQLITE_MAGIC = b"SQLite format 3\x00"

RUNNING, COMPLETE, FAILED, INTERRUPTED = "running", "complete", "failed", "interrupted"


def utcnow() -> datetime:
    """Naive UTC now (SQLite stores no time zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime()}


class Meta(Base):
    """Key/value facts about the database itself (``schema_version``)."""

    __tablename__ = "robint_meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ModelRecord(Base):
    """A submission as evaluated: identified by name and the sha256 of its file and weights."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("name", "file_sha256", "weights_sha256"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    source: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    weights_sha256: Mapped[str | None] = mapped_column(String(64))
    info: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    runs: Mapped[list[RunRecord]] = relationship(back_populates="model")


class RunRecord(Base):
    """One evaluation of one model under one configuration."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    dataset: Mapped[str] = mapped_column(String(100))
    threat_model: Mapped[str] = mapped_column(String(10))
    eps: Mapped[float] = mapped_column(Float)
    eps_text: Mapped[str] = mapped_column(String(32))
    n_examples: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    attack: Mapped[str] = mapped_column(String(100))
    config_key: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    clean_acc: Mapped[float | None] = mapped_column(Float)
    robust_acc: Mapped[float | None] = mapped_column(Float)
    config: Mapped[dict[str, Any]]
    provenance: Mapped[dict[str, Any]]
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    owner_host: Mapped[str | None] = mapped_column(String(255))  # schema 2: who is computing a running run
    owner_pid: Mapped[int | None] = mapped_column(Integer)
    owner_start: Mapped[str | None] = mapped_column(String(64))
    heartbeat_at: Mapped[datetime | None]
    model: Mapped[ModelRecord] = relationship(back_populates="runs")
    examples: Mapped[list[ExampleRecord]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="ExampleRecord.idx"
    )
    metrics: Mapped[list[MetricRecord]] = relationship(back_populates="run", cascade="all, delete-orphan")
    artifacts: Mapped[list[ArtifactRecord]] = relationship(back_populates="run", cascade="all, delete-orphan")


class ExampleRecord(Base):
    """Per-example outcome of a run (index into the data set's test split)."""

    __tablename__ = "examples"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[int] = mapped_column(Integer)
    clean_pred: Mapped[int] = mapped_column(Integer)
    adv_pred: Mapped[int] = mapped_column(Integer)
    clean_correct: Mapped[bool] = mapped_column(Boolean)
    robust_correct: Mapped[bool] = mapped_column(Boolean)
    perturbation: Mapped[float] = mapped_column(Float)
    run: Mapped[RunRecord] = relationship(back_populates="examples")


class MetricRecord(Base):
    """One interpretability score of a run: summary statistics plus the per-example values."""

    __tablename__ = "metrics"
    __table_args__ = (UniqueConstraint("run_id", "method", "metric"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(100))
    metric: Mapped[str] = mapped_column(String(100))
    mean: Mapped[float | None] = mapped_column(Float)
    std: Mapped[float | None] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    values: Mapped[list[Any]] = mapped_column(JSON, default=list)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    run: Mapped[RunRecord] = relationship(back_populates="metrics")


class ArtifactRecord(Base):
    """Intermediate results of a running run (e.g. attributions), kept so a resumed run need not recompute them."""

    __tablename__ = "artifacts"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    run: Mapped[RunRecord] = relationship(back_populates="artifacts")


# --- opening a database ------------------------------------------------------------------------------


def open_database(url: str = DEFAULT_DB, *, create: bool = True) -> sessionmaker[Session]:
    """Engine + sessionmaker for ``url``; creates the schema in a new database.

    Raises:
        HarnessError: the file is not a SQLite database, belongs to another program, or cannot be opened.
    """
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        _check_sqlite_file(path)
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HarnessError(f"cannot create {path.parent}: {exc.strerror}", "pass a writable --db") from None
    timeout = float(parsed.query.get("timeout", BUSY_TIMEOUT_S)) if is_sqlite else 0.0
    engine = create_engine(url.split("?")[0] if is_sqlite else url,
                           connect_args={"timeout": timeout} if is_sqlite else {})  # fmt: skip
    if is_sqlite:
        event.listen(engine, "connect", partial(_sqlite_pragmas, timeout=timeout))
    try:
        _ensure_schema(engine, create=create)
    except OperationalError as exc:
        raise HarnessError(f"cannot open database {url}: {exc.orig}", "check the path and permissions") from None
    except DatabaseError as exc:
        raise HarnessError(f"database {url} is damaged: {exc.orig}", "restore it or pass another --db") from None
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
            raise HarnessError(f"the results disk is full or failing: SQLite could not open {path} ({exc}); "
                               "nothing was written", "free disk space and run again") from None  # fmt: skip
        raise HarnessError(f"database {path} cannot be read ({exc}); it was left untouched",
                           "restore it from a backup or pass another --db") from None  # fmt: skip
    except sqlite3.DatabaseError as exc:
        raise HarnessError(f"database {path} is damaged ({exc}); it was left untouched",
                           "restore it from a backup or pass another --db") from None  # fmt: skip
    if tables and "robint_meta" not in tables:
        raise HarnessError(
            f"database {path} belongs to another program (tables: {', '.join(sorted(tables)[:5])})",
            "pass a --db of robint-bench's own; the file was left untouched",
        )
    if version is not None and (not str(version).isdigit() or int(version) > SCHEMA_VERSION):
        raise HarnessError(f"database {path} has schema version {version}; this robint-bench reads versions 1 to "
                           f"{SCHEMA_VERSION} (the file was left untouched)",
                           "upgrade robint-bench or use another --db")  # fmt: skip


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
        from harness.migrations import upgrade

        upgrade(engine)
    elif not ours <= set(inspect(engine).get_table_names()):
        raise HarnessError(f"database {engine.url} lacks tables of schema {SCHEMA_VERSION}",
                           "restore it or use another --db")  # fmt: skip


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
        raise HarnessError(f"the database is damaged: {exc.orig}",
                           "restore it from a backup or use another --db") from None  # fmt: skip


def _database_error(exc: OperationalError) -> HarnessError:
    text = str(exc.orig).lower()
    if "locked" in text or "busy" in text:
        return HarnessError("the database is locked by another process for longer than the busy timeout",
                            "retry when the other process is done (nothing was written)")  # fmt: skip
    if "disk is full" in text or "disk i/o" in text:
        return HarnessError("the results disk is full (nothing was written)", "free disk space and run again")
    if "readonly" in text or "read-only" in text:
        return HarnessError("the database or its directory is read-only (nothing was written)",
                            "make the results directory writable or pass another --db")  # fmt: skip
    return HarnessError(f"database error: {exc.orig}", "check the --db path and permissions")


def claim(s: Session, run: RunRecord, now: datetime) -> bool:
    """Atomically take over an interrupted run (compare-and-swap on its owner); False if another process won."""
    from harness import ownership

    mine = ownership.me()
    result = s.execute(
        update(RunRecord)
        .where(RunRecord.id == run.id, RunRecord.owner_pid.is_not_distinct_from(run.owner_pid),
               RunRecord.owner_start.is_not_distinct_from(run.owner_start))
        .values(heartbeat_at=now, **mine)
    )  # fmt: skip
    if result.rowcount != 1:
        return False
    for key, value in mine.items():
        set_committed_value(run, key, value)
    return True


def all_runs(s: Session) -> list[RunRecord]:
    """Every run, newest first."""
    return list(s.scalars(select(RunRecord).order_by(RunRecord.created_at.desc())))


def get_or_create_model(
    s: Session, *, name: str, source: str, file_sha256: str, weights_sha256: str | None, info: dict[str, Any]
) -> ModelRecord:
    """The model row with this name and these hashes, created if new."""
    found = s.scalars(
        select(ModelRecord).where(
            ModelRecord.name == name,
            ModelRecord.file_sha256 == file_sha256,
            ModelRecord.weights_sha256.is_(None)
            if weights_sha256 is None
            else ModelRecord.weights_sha256 == weights_sha256,
        )
    ).first()
    if found is not None:
        return found
    model = ModelRecord(
        name=name, source=source, file_sha256=file_sha256, weights_sha256=weights_sha256, info=info
    )
    s.add(model)
    s.flush()
    return model


def ensure_model(sessions: sessionmaker[Session], **fields: Any) -> int:
    """Id of the model row with this name and these hashes (``get_or_create_model``'s fields), created if new.

    Two runs of a new model that start together both find no row and insert one: the second insert violates the
    UNIQUE constraint and rolls back, and a fresh transaction then reads the first process's row.
    """
    try:
        with transaction(sessions) as s:
            return get_or_create_model(s, **fields).id
    except HarnessError as exc:  # transaction() turns database errors into HarnessErrors; the original is the context
        if not isinstance(exc.__context__, IntegrityError):
            raise
    with transaction(sessions) as s:
        return get_or_create_model(s, **fields).id


def find_runs(s: Session, *, model_id: int, config_key: str, status: str | None = None) -> list[RunRecord]:
    """Runs of a model with an identical configuration, newest first."""
    query = select(RunRecord).where(RunRecord.model_id == model_id, RunRecord.config_key == config_key)
    if status is not None:
        query = query.where(RunRecord.status == status)
    return list(s.scalars(query.order_by(RunRecord.created_at.desc())))


def completed_runs(s: Session) -> list[RunRecord]:
    """Every completed run, oldest first."""
    query = select(RunRecord).where(RunRecord.status == COMPLETE).order_by(RunRecord.created_at)
    return list(s.scalars(query))


def get_run(s: Session, run_id: str) -> RunRecord:
    """The run with this id (a unique prefix is enough)."""
    run = s.get(RunRecord, run_id)
    if run is not None:
        return run
    matches = list(s.scalars(select(RunRecord).where(RunRecord.id.startswith(run_id))))
    if len(matches) == 1:
        return matches[0]
    raise HarnessError(
        f"no run {run_id!r} in the database" if not matches else f"run id {run_id!r} is ambiguous",
        "list runs with `robint-bench results`",
    )
