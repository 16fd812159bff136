"""Evaluating the model zoo: every model of a spec through :func:`harness.pipeline.evaluate.evaluate`, each completed
run exported to the archive (``results/archive/<model>-<run id>.json.gz``) so that a fresh clone's leaderboard shows it.

Resumable by construction: the archive is imported first, so an archived run is an identical completed run that
``evaluate`` reuses (adding only the scores it lacks), an interrupted run resumes, and an archive file is written
only when it is missing or differs from the database's run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import store
from harness.core.config import DEFAULT_DB, RunConfig
from harness.core.errors import HarnessError
from harness.pipeline.evaluate import evaluate
from harness.pipeline.imports import import_archives
from harness.store.archive import ARCHIVE_SUFFIXES, archive_files, archive_record, export_run, read_archive
from harness.train.zoo import ZooSpec

DEFAULT_ARCHIVE = Path("results/archive")


@dataclass
class ZooRun:
    """One model's evaluation: ``status`` is stored, reused, resumed, missing (no submission yet) or failed."""

    name: str
    status: str
    run_id: str | None = None
    clean_acc: float | None = None
    robust_acc: float | None = None
    attack: str | None = None
    n_examples: int | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    archive: Path | None = None
    exported: bool = False
    error: str | None = None


def run_config(spec: ZooSpec, name: str, overrides: dict[str, Any] | None = None, **common: Any) -> RunConfig:
    """The RunConfig of one zoo model: the spec's evaluation settings, then ``overrides`` (the command line's), then
    the model's own settings; ``common`` are the RunConfig fields every model shares (db, data_dir, progress...)."""
    (entry,) = spec.select([name])
    settings = {**spec.evaluate, **(overrides or {}), **entry.evaluate}
    for key in ("method_options", "featurevis_options"):
        if key in settings:
            settings[key] = tuple(settings[key])
    return RunConfig(model=entry.submission, **settings, **common)


def evaluate_zoo(
    spec: ZooSpec,
    *,
    only: Iterable[str] | None = None,
    overrides: dict[str, Any] | None = None,
    db: str = DEFAULT_DB,
    data_dir: Path | None = None,
    archive_dir: Path | None = DEFAULT_ARCHIVE,
    device: str = "auto",
    rescore: bool = False,
    trusted: bool = False,
    progress: bool = True,
    on_done: Callable[[ZooRun], None] | None = None,
) -> list[ZooRun]:
    """Evaluate the selected models (those whose submission exists) and export their runs to ``archive_dir``
    (None: no export). A model whose evaluation fails is reported as failed and the others go on."""
    sessions = store.open_database(db)
    if archive_dir is not None and Path(archive_dir).is_dir():
        report = import_archives(sessions, [Path(archive_dir)])
        if report.errors:
            raise report.errors[0]
    common = {"db": db, "data_dir": data_dir, "device": device, "rescore": rescore, "trusted": trusted}
    results = []
    for entry in spec.select(only):
        if not entry.trained():
            result = ZooRun(entry.name, "missing", error=f"{entry.submission} or its weights do not exist yet")
        else:
            result = _evaluate_one(sessions, spec, entry.name, overrides, archive_dir, progress=progress, **common)
        results.append(result)
        if on_done is not None:
            on_done(result)
    return results


def unevaluated(
    spec: ZooSpec, archive_dir: Path = DEFAULT_ARCHIVE, overrides: dict[str, Any] | None = None
) -> list[str]:
    """The spec's trained models that ``archive_dir`` holds no completed run of, under their evaluation settings
    (the spec's, ``overrides``, the model's own; attack, n and seed default as ``run``'s, threat model and eps as the
    submission's METADATA: any) and of their current files (the submission's and weights' sha256): the models
    ``zoo --eval-only`` would evaluate, not reuse. A quick reading of the archive's records (no database, nothing
    verified: ``import`` verifies), in spec order."""
    from dataclasses import fields

    from harness.core.weights import sha256_file

    defaults = {f.name: f.default for f in fields(RunConfig) if f.name in ("attack", "n_examples", "seed")}
    runs: dict[tuple[str, str, str | None], list[dict[str, Any]]] = {}
    for path in archive_files([Path(archive_dir)]):
        try:
            record = json.loads(read_archive(path)[1])
            model, run = record["model"], record["run"]
            if run["status"] == store.COMPLETE:
                runs.setdefault((model["name"], model["file_sha256"], model["weights_sha256"]), []).append(run)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    left = []
    for entry in spec.entries:
        if not entry.trained():
            continue
        settings = {**defaults, **spec.evaluate, **(overrides or {}), **entry.evaluate}
        wanted = {k: settings[k] for k in ("attack", "n_examples", "seed", "threat_model") if k in settings}
        if "eps" in settings:
            wanted["eps_text"] = str(settings["eps"])
        weights = sha256_file(entry.weights) if entry.weights.is_file() else None
        stored = runs.get((entry.name, sha256_file(entry.submission), weights), [])
        if not any(all(run.get(k) == v for k, v in wanted.items()) for run in stored):
            left.append(entry.name)
    return left


def _evaluate_one(sessions, spec: ZooSpec, name: str, overrides, archive_dir, **common: Any) -> ZooRun:
    start = time.perf_counter()
    try:
        summary = evaluate(run_config(spec, name, overrides, **common))
    except Exception as exc:  # noqa: BLE001  (one failed model must not stop the zoo; it is reported)
        error = str(exc) if isinstance(exc, HarnessError) else f"{type(exc).__name__}: {exc}"
        return ZooRun(name, "failed", seconds=round(time.perf_counter() - start, 1), error=error)
    status = "reused" if summary.reused else "resumed" if summary.resumed else "stored"
    result = ZooRun(
        name,
        status,
        summary.run_id,
        summary.clean_acc,
        summary.robust_acc,
        summary.config.attack,
        summary.config.n_examples,
        round(time.perf_counter() - start, 1),
        dict(summary.timings),
    )
    if archive_dir is not None:
        result.archive, result.exported = archive(sessions, summary.run_id, Path(archive_dir))
    return result


def archive(sessions, run_id: str, archive_dir: Path) -> tuple[Path, bool]:
    """Export a completed run to ``archive_dir`` unless an identical archive file of it is there already (a file of
    the same run that differs, e.g. one that lacks scores added since, is replaced). Returns (path, written)."""
    names = tuple(f"-{run_id}{suffix}" for suffix in ARCHIVE_SUFFIXES)
    existing = [f for f in archive_files([Path(archive_dir)]) if f.name.endswith(names)]
    with store.transaction(sessions) as s:
        if existing:
            current = json.loads(json.dumps(archive_record(store.get_run(s, run_id))))
            try:
                same = json.loads(read_archive(existing[0])[1]) == current
            except (OSError, ValueError):  # json.JSONDecodeError is a ValueError
                same = False
            if same:
                return existing[0], False
            return export_run(s, run_id, existing[0], fmt="archive", force=True), True
        return export_run(s, run_id, Path(archive_dir), fmt="archive"), True
