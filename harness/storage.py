"""SQLite/SQLAlchemy storage: models, runs, per-example results and metric rows.

Storage functions take a session and never commit: callers own each unit of work with
``with sessions.begin() as s:``. Only runs with status ``complete`` are results.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DatabaseError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker

from harness.errors import HarnessError

DEFAULT_DB = "sqlite:///results/robint.db"
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

RUNNING, COMPLETE, FAILED = "running", "complete", "failed"


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
    model: Mapped[ModelRecord] = relationship(back_populates="runs")
    examples: Mapped[list[ExampleRecord]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="ExampleRecord.idx"
    )
    metrics: Mapped[list[MetricRecord]] = relationship(back_populates="run", cascade="all, delete-orphan")


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
    engine = create_engine(url, connect_args={"timeout": 30} if is_sqlite else {})
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        _ensure_schema(engine, create=create)
    except OperationalError as exc:
        raise HarnessError(f"cannot open database {url}: {exc.orig}", "check the path and permissions") from None
    except DatabaseError as exc:
        raise HarnessError(f"database {url} is damaged: {exc.orig}", "restore it or pass another --db") from None
    return sessionmaker(engine, expire_on_commit=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA busy_timeout = 30000")
    cur.execute("PRAGMA foreign_keys = ON")
    mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal":
        cur.execute("PRAGMA journal_mode = WAL")
    cur.close()


def _check_sqlite_file(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb") as fh:
        head = fh.read(len(_SQLITE_MAGIC))
    if head != _SQLITE_MAGIC:
        raise HarnessError(
            f"{path} is not a SQLite database (it was left untouched)", "pass another --db or move the file away"
        )


def _ensure_schema(engine: Engine, *, create: bool) -> None:
    tables = set(inspect(engine).get_table_names())
    ours = set(Base.metadata.tables)
    if not tables:
        if not create:
            raise HarnessError(f"database {engine.url} is empty", "run `robint-bench run` first")
        Base.metadata.create_all(engine)
        with Session(engine) as s, s.begin():
            s.add(Meta(key="schema_version", value=str(SCHEMA_VERSION)))
        return
    if "robint_meta" not in tables:
        raise HarnessError(
            f"database {engine.url} belongs to another program (tables: {', '.join(sorted(tables)[:5])})",
            "pass a --db of robint-bench's own; the file was left untouched",
        )
    with Session(engine) as s:
        version = s.get(Meta, "schema_version")
    if version is None or int(version.value) > SCHEMA_VERSION or not ours <= tables:
        raise HarnessError(
            f"database {engine.url} has schema version {version.value if version else '?'}; "
            f"this robint-bench reads version {SCHEMA_VERSION}",
            "upgrade robint-bench or use another --db",
        )


# --- writing -----------------------------------------------------------------------------------------


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
