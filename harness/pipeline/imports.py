"""``robint-bench import``: archived runs into the database, each verified first.

An archive file is untrusted text (anyone can write one), so a record is checked as a worker's messages are
(harness.core.schema, harness.pipeline.metadata) before anything of it is stored: JSON without non-finite constants and
nested at most :data:`harness.core.schema.MAX_DEPTH` levels; the model's name in RobustBench's model-id alphabet, its
METADATA through the submission schema, hashes as hex digests; the run's data set, threat model, eps and attack as
``run`` would parse them and its ``config_key`` the hash of exactly that configuration; every string bounded and
free of control characters, every number finite; the per-example rows of the right types, and the accuracies
recomputed from them (harness.store.verify). One name is one model: a name that another model (other hashes) holds
in the database is refused. Flags are kept, and the run is stored with its provenance (``details.imported``: the
file and its sha256), shown as ``imported`` in ``results --json`` and on the board.

Each file is its own unit: a bad file is one error naming it and the others are imported (:class:`ImportReport`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from harness import store
from harness.attack.registry import parse_attack
from harness.core import schema
from harness.core.config import ResolvedConfig
from harness.core.errors import HarnessError
from harness.core.threat import parse_eps, parse_threat_model
from harness.data import get_dataset
from harness.pipeline.metadata import metadata
from harness.store.archive import (
    ARCHIVE_FORMAT,
    EXAMPLE_COLUMNS,
    MAX_ARCHIVE_BYTES,
    archive_files,
    import_archive_record,
    read_archive,
)
from harness.store.verify import rows_problems

MAX_FILE_BYTES = MAX_ARCHIVE_BYTES  # of the file, and of its JSON once decompressed
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_METRIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,99}")
_FIX = "restore the file from git, or re-export it with `robint-bench export`"
_TEXT = 10_000  # characters of any one stored string
_VALUES = 10**6  # per-example values of one score


@dataclass
class ImportReport:
    """What :func:`import_archives` did: new runs, files read, the files that passed (their runs now in the
    database, new or already there), and one error per bad file."""

    added: int = 0
    files: int = 0
    errors: list[HarnessError] = field(default_factory=list)
    verified: list[Path] = field(default_factory=list)


def import_archives(sessions: sessionmaker[Session], paths: Iterable[Path]) -> ImportReport:
    """Import archive files (or directories of ``*.json.gz`` and ``*.json``), each verified (:func:`verified_record`)
    and stored in its own transactions; a bad file is one error naming it, and the others are still imported."""
    files = archive_files(paths)
    report = ImportReport(files=len(files))
    for path in files:
        try:
            record = verified_record(path)
            with store.transaction(sessions) as s:
                m = record["model"]
                store.claim_name(s, m["name"], m["source"], m["file_sha256"], m["weights_sha256"])
            report.added += import_archive_record(sessions, record)
            report.verified.append(path)
        except HarnessError as exc:
            report.errors.append(HarnessError(f"archived run {path} was not imported: {exc.problem}", exc.fix))
    return report


def verified_record(path: Path) -> dict[str, Any]:
    """The archive record in ``path``, checked (module doc) and marked as imported from it.

    Raises:
        HarnessError: naming the first problem (the caller names the file).
    """
    try:
        raw, text = read_archive(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise HarnessError(f"it cannot be read ({exc.strerror or exc})", _FIX) from None
    except ValueError as exc:
        raise HarnessError(str(exc), _FIX) from None
    if len(raw) > MAX_FILE_BYTES:
        raise HarnessError(f"it is larger than {MAX_FILE_BYTES >> 20} MiB", _FIX)
    if len(text) > MAX_FILE_BYTES:
        raise HarnessError(f"it decompresses to more than {MAX_FILE_BYTES >> 20} MiB", _FIX)
    try:
        record = schema.load_json(text)
        _check(record)
    except schema.SchemaError as exc:
        raise HarnessError(str(exc), _FIX) from None
    problems = _row_problems(record)
    if problems:
        raise HarnessError(f"its numbers are not those of its per-example rows: {'; '.join(problems)}", _FIX)
    run = dict(record["run"])
    imported = {"file": schema.shown(path.name, 200)[1:-1], "sha256": hashlib.sha256(raw).hexdigest()}
    run["details"] = {**run["details"], "imported": imported}
    return {**record, "run": run}


def _check(record: Any) -> None:
    _keys(record, {"format", "model", "run", "examples", "metrics"}, "the record")
    if record["format"] != ARCHIVE_FORMAT:
        raise schema.SchemaError(f"its format is {schema.shown(record['format'])}, not {ARCHIVE_FORMAT!r}")
    _model(record["model"])
    _run(record["run"])
    examples = record["examples"]
    _keys(examples, {"columns", "rows"}, "examples")
    if examples["columns"] != list(EXAMPLE_COLUMNS):
        raise schema.SchemaError(f"examples columns must be {list(EXAMPLE_COLUMNS)}")
    if not isinstance(examples["rows"], list) or not all(
        isinstance(r, list) and len(r) == len(EXAMPLE_COLUMNS) for r in examples["rows"]
    ):
        raise schema.SchemaError(f"example rows must be lists of {len(EXAMPLE_COLUMNS)} values")
    if not isinstance(record["metrics"], list):
        raise schema.SchemaError("metrics must be a list")
    for i, m in enumerate(record["metrics"]):
        _metric(m, f"metrics[{i}]")


def _model(model: Any) -> None:
    _keys(model, {"name", "source", "file_sha256", "weights_sha256", "info"}, "model")
    schema.name(model["name"], "model name")
    schema.text(model["source"], "model source", 4096, required=True)
    _hex(model["file_sha256"], "model file_sha256")
    if model["weights_sha256"] is not None:
        _hex(model["weights_sha256"], "model weights_sha256")
    try:
        info = metadata(model["info"])  # the submission's METADATA, through the schema a worker's report passes
    except HarnessError as exc:
        raise schema.SchemaError(f"model info: {exc.problem}") from None
    if info.get("name") != model["name"]:
        raise schema.SchemaError("model info names another model than the model")


def _run(run: Any) -> None:
    columns = {"id", "dataset", "threat_model", "eps", "eps_text", "n_examples", "seed", "attack", "config_key"}
    columns |= {"status", "clean_acc", "robust_acc", "config", "provenance", "timings", "details", "flags", "error"}
    _keys(run, columns | {"created_at", "finished_at"}, "run")
    if not isinstance(run["id"], str) or not _RUN_ID.fullmatch(run["id"]):
        raise schema.SchemaError(f"run id {schema.shown(run['id'])} is not 1-32 letters, digits, '_' or '-'")
    if run["status"] != store.COMPLETE:
        raise schema.SchemaError(f"run status {schema.shown(run['status'])} is not {store.COMPLETE!r}")
    try:
        get_dataset(schema.text(run["dataset"], "run dataset", 300, required=True))
        threat = parse_threat_model(schema.text(run["threat_model"], "run threat_model", 16))
        eps = schema.number(run["eps"], "run eps", 1e-12, 1e6)
        if abs(parse_eps(schema.text(run["eps_text"], "run eps_text", 32))[0] - eps) > 1e-9 * max(1.0, eps):
            raise schema.SchemaError(f"run eps_text {schema.shown(run['eps_text'])} is not its eps {eps!r}")
        parse_attack(schema.text(run["attack"], "run attack", 100, required=True))
    except HarnessError as exc:
        raise schema.SchemaError(f"run: {exc.problem}") from None
    schema.integer(run["n_examples"], "run n_examples", 1, 10**7)
    schema.integer(run["seed"], "run seed", -(2**63), 2**63 - 1)
    for key in ("config", "provenance", "timings", "details"):
        if not isinstance(run[key], dict):
            raise schema.SchemaError(f"run {key} must be a dict")
        _plain(run[key], f"run {key}")
    _config(run, threat)
    for key, seconds in run["timings"].items():
        schema.number(seconds, f"run timings {schema.shown(key, 40)}", 0, 1e9)
    if not isinstance(run["flags"], list):
        raise schema.SchemaError("run flags must be a list")
    for flag in run["flags"]:
        _keys(flag, {"code", "message"}, "a flag")
        schema.text(flag["code"], "flag code", 64, required=True)
        schema.text(flag["message"], "flag message", 2000)
    if run["error"] is not None:
        schema.text(run["error"], "run error", 2000)
    for key in ("created_at", "finished_at"):
        try:
            datetime.fromisoformat(schema.text(run[key], f"run {key}", 40))
        except ValueError:
            raise schema.SchemaError(f"run {key} {schema.shown(run[key])} is not an ISO date and time") from None


def _config(run: dict[str, Any], threat: str) -> None:
    """The run's ``config`` states the configuration of its columns, and ``config_key`` is its hash (the key by
    which ``run`` finds an identical run to reuse)."""
    config = run["config"]
    for key in ("dataset", "eps", "eps_text", "n_examples", "attack", "seed"):
        if config.get(key) != run[key]:
            raise schema.SchemaError(f"run config {key} is not the run's {key}")
    if config.get("threat_model") != threat:
        raise schema.SchemaError("run config threat_model is not the run's")
    batch = schema.integer(config.get("batch_size"), "run config batch_size", 1, 10**7)
    key = ResolvedConfig(
        run["dataset"], threat, run["eps"], run["eps_text"], run["n_examples"], run["attack"], run["seed"], batch
    ).key()
    if run["config_key"] != key:
        raise schema.SchemaError("run config_key is not the hash of its configuration")


def _metric(m: Any, where: str) -> None:
    _keys(m, {"method", "metric", "mean", "std", "n", "ci_low", "ci_high", "values", "details"}, where)
    for key in ("method", "metric"):
        if not isinstance(m[key], str) or not _METRIC.fullmatch(m[key]):
            raise schema.SchemaError(f"{where} {key} {schema.shown(m[key])} is not a metric or method name")
    for key in ("mean", "std", "ci_low", "ci_high"):
        if m[key] is not None:
            schema.number(m[key], f"{where} {key}", -1e300, 1e300)
    schema.integer(m["n"], f"{where} n", 0, 10**9)
    if not isinstance(m["values"], list) or len(m["values"]) > _VALUES:
        raise schema.SchemaError(f"{where} values must be a list of at most {_VALUES} numbers")
    for value in m["values"]:
        if value is not None:
            schema.number(value, f"{where} value", -1e300, 1e300)
    if not isinstance(m["details"], dict):
        raise schema.SchemaError(f"{where} details must be a dict")
    _plain(m["details"], f"{where} details")


def _row_problems(record: dict[str, Any]) -> list[str]:
    run = record["run"]
    return rows_problems(
        n=run["n_examples"],
        eps=run["eps"],
        clean_acc=run["clean_acc"],
        robust_acc=run["robust_acc"],
        rows=[tuple(row) for row in record["examples"]["rows"]],
    )


def _plain(value: Any, where: str) -> None:
    """Every string in ``value`` bounded and without control characters, every number finite, every key text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key in item:
                schema.text(key, f"{where}: a key", 200)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            schema.text(item, f"{where}: a string", _TEXT)
        elif isinstance(item, float) and not math.isfinite(item):
            raise schema.SchemaError(f"{where} holds a non-finite number")


def _keys(value: Any, wanted: set[str], what: str) -> None:
    if not isinstance(value, dict) or set(value) != wanted:
        have = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise schema.SchemaError(f"{what} must have exactly the keys {sorted(wanted)}, not {schema.shown(have, 200)}")


def _hex(value: Any, where: str) -> None:
    if not isinstance(value, str) or not _HEX64.fullmatch(value):
        raise schema.SchemaError(f"{where} {schema.shown(value)} is not a sha256 hex digest")
