"""Runs as plain dicts: the lossless archive format that rebuilds a database (``export``/``import``); the per-run
metric summary it shares with ``results --json`` and the RobustBench export is harness/store/summary.py.

An archive file is the record as indented JSON, gzip-compressed when its name ends in ``.json.gz`` (the default: a
fifth of the size; written byte-identically each time, no name or time in its header); ``.json`` files are read and
written as plain text.

Keep the shapes stable: scripts and CI read them. Extend, never rename.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from harness import store
from harness.core.errors import HarnessError
from harness.store.files import write_bytes_atomic, write_text_atomic
from harness.store.queries import get_run
from harness.store.schema import COMPLETE
from harness.store.summary import iso

ARCHIVE_FORMAT = "robint-bench-run/1"
ARCHIVE_SUFFIXES = (".json.gz", ".json")  # the names an archive file may have (the first: what export writes)
MAX_ARCHIVE_BYTES = 256 << 20  # of a record's JSON; an archived run of 10,000 examples with every score is a few MB
EXAMPLE_COLUMNS = ("idx", "label", "clean_pred", "adv_pred", "clean_correct", "robust_correct", "perturbation")
_RUN_COLUMNS = (
    "id",
    "dataset",
    "threat_model",
    "eps",
    "eps_text",
    "n_examples",
    "seed",
    "attack",
    "config_key",
    "status",
    "clean_acc",
    "robust_acc",
    "config",
    "provenance",
    "timings",
    "details",
    "flags",
    "error",
)
_METRIC_COLUMNS = ("method", "metric", "mean", "std", "n", "ci_low", "ci_high", "values", "details")


def archive_record(run: store.RunRecord) -> dict[str, Any]:
    """A complete run, losslessly, as JSON-ready data (see :func:`import_archive_record`). Where this database got
    the run from (``details["imported"]``: the archive file and its hash, set on import) is not part of the run, so
    it is left out: an imported run exports to the record it was imported from."""
    model = run.model
    return {
        "format": ARCHIVE_FORMAT,
        "model": {
            "name": model.name,
            "source": model.source,
            "file_sha256": model.file_sha256,
            "weights_sha256": model.weights_sha256,
            "info": model.info,
        },
        "run": {
            **{col: getattr(run, col) for col in _RUN_COLUMNS},
            "details": {k: v for k, v in (run.details or {}).items() if k != "imported"},
            "created_at": iso(run.created_at),
            "finished_at": iso(run.finished_at),
        },
        "examples": {
            "columns": list(EXAMPLE_COLUMNS),
            "rows": [[getattr(e, col) for col in EXAMPLE_COLUMNS] for e in run.examples],
        },
        "metrics": [{col: getattr(m, col) for col in _METRIC_COLUMNS} for m in run.metrics],
    }


def import_archive_record(sessions: sessionmaker[Session], record: dict[str, Any]) -> bool:
    """Insert an archived run unless its id is already present; return whether it was inserted. The record must
    have passed harness.pipeline.imports.verified_record (``robint-bench import`` does that first).

    The model row is found or created in its own transaction (:func:`store.ensure_model`), and a run that another
    import inserts between our check and our insert counts as present: concurrent imports of one archive both
    succeed, and each run lands once.
    """
    if record.get("format") != ARCHIVE_FORMAT:
        raise ValueError(f"not a {ARCHIVE_FORMAT} record (format={record.get('format')!r})")
    data = dict(record["run"])
    run_id = data["id"]
    with store.transaction(sessions) as s:
        if s.get(store.RunRecord, run_id) is not None:
            return False
    cols = record["examples"]["columns"]
    run = store.RunRecord(  # built before any write, so a malformed record leaves no model row behind
        created_at=datetime.fromisoformat(data.pop("created_at")),
        finished_at=datetime.fromisoformat(f) if (f := data.pop("finished_at")) else None,
        **data,
    )
    # the rows as plain dicts, inserted in bulk (one executemany per table, not an ORM object per row: 4x faster)
    examples = [{"run_id": run_id, **dict(zip(cols, row, strict=True))} for row in record["examples"]["rows"]]
    metrics = [{**m, "run_id": run_id} for m in record["metrics"]]
    for table, rows in ((store.ExampleRecord, examples), (store.MetricRecord, metrics)):
        known = set(table.__table__.columns.keys())
        if unknown := {key for row in rows for key in row} - known:
            raise ValueError(f"unknown {table.__tablename__} columns: {sorted(unknown)}")
    run.model_id = store.ensure_model(sessions, **record["model"])
    try:
        with store.transaction(sessions) as s:
            if s.get(store.RunRecord, run_id) is not None:
                return False
            s.add(run)
            s.flush()
            for table, rows in ((store.ExampleRecord, examples), (store.MetricRecord, metrics)):
                if rows:
                    s.execute(insert(table), rows)
    except HarnessError as exc:  # transaction() wraps database errors; the original is the context
        if not isinstance(exc.__context__, IntegrityError):
            raise
        with store.transaction(sessions) as s:
            if s.get(store.RunRecord, run_id) is None:
                raise
        return False
    return True


def export_run(
    s: Session,
    run_id: str,
    out: Path | None,
    *,
    fmt: str = "archive",
    fields: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write a completed run as an archive record (``fmt="archive"``, default
    ``results/archive/<model>-<id>.json.gz``; ``out`` a directory, or a ``.json.gz`` or plain ``.json`` path) or a
    RobustBench model_info file (``fmt="robustbench"``, default ``results/robustbench/<dataset>/<threat>/``;
    ``fields`` supply or override METADATA facts it needs) with robint-bench's own scores in a sidecar beside it
    (``robint-bench/<same name>``; ``out`` a directory or a ``.json`` path). Returns the main file's path.

    Names taken from the run (model name, data set, threat model, run id) are sanitised (:func:`safe_name`), so the
    file lands inside ``out`` whatever the run stored (``../../baseline`` as a model name included); an existing file
    is only replaced with ``force``."""
    from harness.store.robustbench import export_path, model_info, sidecar, sidecar_path

    run = get_run(s, run_id)
    if run.status != COMPLETE:
        raise HarnessError(f"run {run.id} is {run.status}, not complete", "export completed runs only")
    if fmt == "archive":
        record, root = archive_record(run), out or Path("results/archive")
        path = root if is_archive_name(root) else root / safe_name(f"{run.model.name}-{run.id}{ARCHIVE_SUFFIXES[0]}")
    else:
        record, root = model_info(run, fields), out or Path("results/robustbench")
        path = root if root.suffix == ".json" else export_path(root, run)
    if path != root:
        if not path.is_relative_to(root):
            raise HarnessError(f"the run's names would put its file at {path}, outside {root}", "rename the model")
        path = root.joinpath(*(safe_name(part) for part in path.relative_to(root).parts))
        if root.resolve() not in path.resolve().parents:
            raise HarnessError(f"{path} would leave {root} (a symbolic link?)", "export into a plain directory")
    paths = [path] if fmt == "archive" else [path, sidecar_path(path)]
    for p in paths:
        if (p.exists() or p.is_symlink()) and not force:
            raise HarnessError(f"{p} exists and was left as it is", "pass --force to overwrite it, or another --out")
    if fmt != "archive":
        write_text_atomic(paths[1], json.dumps(sidecar(run), indent=1) + "\n")
        return write_text_atomic(path, json.dumps(record, indent=1) + "\n")
    return write_archive(path, record)


def is_archive_name(path: Path) -> bool:
    """Whether ``path`` names an archive file (``*.json.gz`` or ``*.json``)."""
    return path.name.endswith(ARCHIVE_SUFFIXES)


def archive_files(paths: Iterable[Path]) -> list[Path]:
    """The archive files of ``paths`` (files as given, directories' ``*.json.gz`` and ``*.json``), sorted."""
    return sorted(
        f for p in paths for f in ([p] if p.is_file() else (g for x in ARCHIVE_SUFFIXES for g in p.glob(f"*{x}")))
    )


def write_archive(path: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` to ``path`` atomically: indented JSON, gzip-compressed (level 9, no name, time 0: the same
    record gives the same bytes) when the name ends in ``.gz``."""
    text = json.dumps(record, indent=1) + "\n"
    if not path.name.endswith(".gz"):
        return write_text_atomic(path, text)
    return write_bytes_atomic(path, gzip.compress(text.encode(), compresslevel=9, mtime=0))


def read_archive(path: Path, limit: int = MAX_ARCHIVE_BYTES) -> tuple[bytes, bytes]:
    """The file's bytes as stored, and its JSON's bytes (decompressed when the name ends in ``.gz``), each cut at
    ``limit + 1`` bytes (a longer one is the caller's to refuse: a small file may decompress to gigabytes).

    Raises:
        OSError: the file cannot be read.
        ValueError: a ``.gz`` file that is not a complete gzip stream.
    """
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    if not path.name.endswith(".gz"):
        return raw, raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb") as g:
            return raw, g.read(limit + 1)
    except (OSError, EOFError, zlib.error):  # gzip.BadGzipFile is an OSError
        raise ValueError("it is not a complete gzip file") from None


def safe_name(text: str) -> str:
    """One path component made of ``A-Z a-z 0-9 . _ + -`` (anything else becomes ``_``), never ``.``/``..`` or
    hidden, at most 120 characters.

    >>> safe_name("../../baseline-1.json"), safe_name("fmnist_standard-8db3ece56b19.json"), safe_name("a/b\\nc")
    ('_._.._baseline-1.json', 'fmnist_standard-8db3ece56b19.json', 'a_b_c')
    """
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", str(text))[:120]
    return "_" + name[1:] if name.startswith(".") else name or "_"


def copy_archived_figures(paths: Iterable[Path], runs_root: Path) -> int:
    """Copy the figures of the archived runs in ``paths`` (files, or directories of archive files) into ``runs_root``
    (``runs/`` beside the database they were imported into), from ``runs/<run id>/`` beside the archive's directory
    (``results/archive`` and ``results/runs``): figures belong to the database that holds the run. Returns how many
    runs' figures were copied (those already there, or without figures beside the archive, are left)."""
    import shutil

    copied = 0
    for f in archive_files(paths):
        try:
            run_id = str(json.loads(read_archive(f)[1])["run"]["id"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id):
            continue
        source = f.resolve().parent.parent / "runs" / run_id
        target = runs_root / run_id
        if not source.is_dir() or source.resolve() == target.resolve() or target.is_dir():
            continue
        # an archive comes from elsewhere: links are not followed (a link could point at any file of this machine)
        shutil.copytree(source, target, ignore=lambda d, names: [n for n in names if (Path(d) / n).is_symlink()])
        copied += 1
    return copied
