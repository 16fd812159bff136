"""Runs as plain dicts: the ``results --json`` shape and the archive format that rebuilds a database.

Keep both shapes stable: scripts and CI read them. Extend, never rename.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from harness import storage
from harness.errors import HarnessError

ARCHIVE_FORMAT = "robint-bench-run/1"
_EXAMPLE_COLUMNS = ("idx", "label", "clean_pred", "adv_pred", "clean_correct", "robust_correct", "perturbation")
_RUN_COLUMNS = (
    "id", "dataset", "threat_model", "eps", "eps_text", "n_examples", "seed", "attack", "config_key", "status",
    "clean_acc", "robust_acc", "config", "provenance", "timings", "details", "flags", "error",
)  # fmt: skip
_METRIC_COLUMNS = ("method", "metric", "mean", "std", "n", "ci_low", "ci_high", "values", "details")


def metric_summary(run: storage.RunRecord) -> dict[str, dict[str, dict[str, Any]]]:
    """``{method: {metric: {mean, std, n, ci_low, ci_high, details}}}`` for a run."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for m in sorted(run.metrics, key=lambda m: (m.method, m.metric)):
        out.setdefault(m.method, {})[m.metric] = {
            "mean": m.mean, "std": m.std, "n": m.n, "ci_low": m.ci_low, "ci_high": m.ci_high,
            "details": m.details,
        }  # fmt: skip
    return out


def result_record(run: storage.RunRecord) -> dict[str, Any]:
    """One run as ``robint-bench results --json`` prints it."""
    return {
        "run_id": run.id,
        "model": run.model.name,
        "dataset": run.dataset,
        "threat_model": run.threat_model,
        "eps": run.eps,
        "eps_text": run.eps_text,
        "n_examples": run.n_examples,
        "seed": run.seed,
        "attack": run.attack,
        "clean_acc": run.clean_acc,
        "robust_acc": run.robust_acc,
        "status": run.status,
        "created_at": _iso(run.created_at),
        "finished_at": _iso(run.finished_at),
        "versions": run.provenance.get("versions", {}),
        "git": run.provenance.get("git", {}),
        "hardware": run.provenance.get("hardware", {}),
        "flags": run.flags,
        "autoattack": {key: (run.details or {}).get("autoattack", {}).get(key)
                       for key in ("accuracy_after", "warnings")},  # fmt: skip
        "model_sha256": {"file": run.model.file_sha256, "weights": run.model.weights_sha256},
        "metrics": metric_summary(run),
    }


def archive_record(run: storage.RunRecord) -> dict[str, Any]:
    """A complete run, losslessly, as JSON-ready data (see :func:`import_archive_record`)."""
    model = run.model
    return {
        "format": ARCHIVE_FORMAT,
        "model": {
            "name": model.name, "source": model.source, "file_sha256": model.file_sha256,
            "weights_sha256": model.weights_sha256, "info": model.info,
        },
        "run": {
            **{col: getattr(run, col) for col in _RUN_COLUMNS},
            "created_at": _iso(run.created_at), "finished_at": _iso(run.finished_at),
        },
        "examples": {
            "columns": list(_EXAMPLE_COLUMNS),
            "rows": [[getattr(e, col) for col in _EXAMPLE_COLUMNS] for e in run.examples],
        },
        "metrics": [{col: getattr(m, col) for col in _METRIC_COLUMNS} for m in run.metrics],
    }  # fmt: skip


def import_archive_record(sessions: sessionmaker[Session], record: dict[str, Any]) -> bool:
    """Insert an archived run unless its id is already present; return whether it was inserted.

    The model row is found or created in its own transaction (:func:`storage.ensure_model`), and a run that another
    import inserts between our check and our insert counts as present: concurrent imports of one archive both
    succeed, and each run lands once.
    """
    if record.get("format") != ARCHIVE_FORMAT:
        raise ValueError(f"not a {ARCHIVE_FORMAT} record (format={record.get('format')!r})")
    data = dict(record["run"])
    run_id = data["id"]
    with storage.transaction(sessions) as s:
        if s.get(storage.RunRecord, run_id) is not None:
            return False
    cols = record["examples"]["columns"]
    run = storage.RunRecord(  # built before any write, so a malformed record leaves no model row behind
        created_at=datetime.fromisoformat(data.pop("created_at")),
        finished_at=datetime.fromisoformat(f) if (f := data.pop("finished_at")) else None,
        **data,
    )
    run.examples = [storage.ExampleRecord(**dict(zip(cols, row, strict=True))) for row in record["examples"]["rows"]]
    run.metrics = [storage.MetricRecord(**m) for m in record["metrics"]]
    run.model_id = storage.ensure_model(sessions, **record["model"])
    try:
        with storage.transaction(sessions) as s:
            if s.get(storage.RunRecord, run_id) is not None:
                return False
            s.add(run)
    except HarnessError as exc:  # transaction() wraps database errors; the original is the context
        if not isinstance(exc.__context__, IntegrityError):
            raise
        with storage.transaction(sessions) as s:
            if s.get(storage.RunRecord, run_id) is None:
                raise
        return False
    return True


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
