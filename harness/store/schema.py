"""The database schema: models, runs, per-example results, metric rows and run artifacts (SQLAlchemy 2 ORM).

Only runs with status ``complete`` are results. ``SCHEMA_VERSION`` is bumped with every migration
(harness/store/migrations.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
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
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

SCHEMA_VERSION = 2

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
