"""Queries and small writes on the results database (each takes a session and never commits)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from harness.core.errors import HarnessError
from harness.store import liveness
from harness.store.engine import transaction
from harness.store.schema import COMPLETE, FAILED, INTERRUPTED, RUNNING, ModelRecord, RunRecord, utcnow


def claim(s: Session, run: RunRecord, now: datetime) -> bool:
    """Atomically take over an interrupted run (compare-and-swap on its owner); False if another process won."""
    mine = liveness.me()
    result = s.execute(
        update(RunRecord)
        .where(
            RunRecord.id == run.id,
            RunRecord.owner_pid.is_not_distinct_from(run.owner_pid),
            RunRecord.owner_start.is_not_distinct_from(run.owner_start),
        )
        .values(heartbeat_at=now, **mine)
    )
    if result.rowcount != 1:
        return False
    for key, value in mine.items():
        set_committed_value(run, key, value)
    return True


def all_runs(s: Session) -> list[RunRecord]:
    """Every run, newest first."""
    return list(s.scalars(select(RunRecord).order_by(RunRecord.created_at.desc())))


REPORTED_SOURCE = "robustbench-reported"  # the source of imported RobustBench entries (harness.store.robustbench)


def name_holder(s: Session, name: str, source: str, file_sha256: str, weights_sha256: str | None) -> ModelRecord | None:
    """The model row that holds ``name`` with another identity (other file or weights hashes), if any: one name is
    one model. Imported RobustBench entries (reported numbers, shown beside the model of their name) hold no name,
    and a RobustBench zoo id may hold several checkpoints (a later one is flagged ``weights-changed``)."""
    rows = s.scalars(select(ModelRecord).where(ModelRecord.name == name, ModelRecord.source != REPORTED_SOURCE))
    for row in rows:
        if (row.file_sha256, row.weights_sha256) == (file_sha256, weights_sha256):
            continue
        if source.startswith("robustbench:") and row.source == source:
            continue
        return row
    return None


def claim_name(s: Session, name: str, source: str, file_sha256: str, weights_sha256: str | None) -> None:
    """Refuse a model whose name another model holds (:func:`name_holder`), with one line.

    Raises:
        HarnessError: naming the model that holds the name.
    """
    holder = name_holder(s, name, source, file_sha256, weights_sha256)
    if holder is not None:
        raise HarnessError(
            f"the name {name!r} belongs to another model in this database (file sha256 {holder.file_sha256[:12]}, "
            f"weights sha256 {(holder.weights_sha256 or 'none')[:12]}, from {holder.source[-80:]}); this model's "
            f"files hash to {file_sha256[:12]} and {(weights_sha256 or 'none')[:12]}",
            f"give this model a name of its own in METADATA (e.g. {name[:56]}_v2): one name is one model",
        )


def get_or_create_model(
    s: Session, *, name: str, source: str, file_sha256: str, weights_sha256: str | None, info: dict[str, Any]
) -> ModelRecord:
    """The model row with this name and these hashes, created if new (and if no other model holds the name:
    :func:`claim_name`)."""
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
    claim_name(s, name, source, file_sha256, weights_sha256)
    model = ModelRecord(name=name, source=source, file_sha256=file_sha256, weights_sha256=weights_sha256, info=info)
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


def effective_status(run: RunRecord, now: datetime) -> str:
    """The run's status, with a ``running`` run whose owner is gone reported as ``interrupted``."""
    if run.status == RUNNING and not liveness.is_alive(
        run.owner_host, run.owner_pid, run.owner_start, run.heartbeat_at, now
    ):
        return INTERRUPTED
    return run.status


def runs_with_status(s: Session, *, prune: bool = False) -> list[tuple[RunRecord, str, bool]]:
    """Every run (newest first) with its effective status, and whether it was pruned: with ``prune``, failed and
    interrupted runs are deleted with their partial results (the caller's transaction commits)."""
    now = utcnow()
    out = []
    for run in all_runs(s):
        status = effective_status(run, now)
        pruned = prune and status in (FAILED, INTERRUPTED)
        out.append((run, status, pruned))
        if pruned:
            s.delete(run)
    return out
