"""RobustBench's model_info JSON: exporting a run in it, and importing published entries as "reported" numbers.

RobustBench keeps one file per model at ``model_info/<dataset>/<threat_model>/<model id>.json`` with accuracies
as percentage strings ("65.88"). robint-bench writes that layout with its own scores under ``"robint_bench"``,
and reads such files back as reported entries: models rows whose ``info["reported"]`` holds the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from harness import storage
from harness.errors import HarnessError
from harness.records import metric_summary
from harness.threat import parse_eps

REPORTED_SOURCE = "robustbench-reported"
THREAT_DIRS = ("Linf", "L2", "corruptions")


def model_info(run: storage.RunRecord) -> dict[str, Any]:
    """A completed run as a RobustBench model_info dict (plus robint-bench's numbers under ``robint_bench``)."""
    info = run.model.info
    return {
        "link": str(info.get("link") or info.get("paper") or ""),
        "name": str(info.get("title") or info.get("paper") or info["name"]),
        "authors": str(info.get("authors") or ""),
        "additional_data": bool(info.get("additional_data", False)),
        "number_forward_passes": int(info.get("number_forward_passes", 1)),
        "dataset": run.dataset,
        "venue": str(info.get("venue") or ""),
        "architecture": str(info.get("architecture") or ""),
        "eps": run.eps_text,
        "clean_acc": f"{100 * run.clean_acc:.2f}",
        "reported": f"{100 * run.robust_acc:.2f}",
        "autoattack_acc": f"{100 * run.robust_acc:.2f}",
        "footnote": (f"Measured by robint-bench (run {run.id}) on the first {run.n_examples} test images, "
                     f"AutoAttack {run.attack}, seed {run.seed}."),  # fmt: skip
        "robint_bench": {
            "run_id": run.id, "model": run.model.name, "threat_model": run.threat_model, "n_examples": run.n_examples,
            "attack": run.attack, "seed": run.seed, "flags": run.flags, "metrics": metric_summary(run),
        },  # fmt: skip
    }


def export_path(root: Path, run: storage.RunRecord) -> Path:
    return root / run.dataset / run.threat_model / f"{run.model.name}.json"


def import_reported(s: Session, root: Path) -> int:
    """Read every model_info JSON under ``root`` as a reported entry; returns how many were new."""
    files = [root] if root.is_file() else sorted(root.rglob("*.json"))
    added = 0
    for path in files:
        try:
            raw = path.read_bytes()
            data = json.loads(raw)
        except (OSError, json.JSONDecodeError) as exc:
            raise HarnessError(f"cannot read {path}: {exc}", "pass RobustBench model_info JSON files") from None
        if not isinstance(data, dict) or not {"dataset", "eps", "clean_acc"} <= set(data):
            raise HarnessError(f"{path} is not a RobustBench model_info file (needs dataset, eps, clean_acc)",
                               "pass files from RobustBench's model_info/<dataset>/<threat model>/ tree")  # fmt: skip
        threat = data.get("threat_model") or (data.get("robint_bench") or {}).get("threat_model") or (
            path.parent.name if path.parent.name in THREAT_DIRS else None)  # fmt: skip
        if threat is None:
            raise HarnessError(f"cannot tell the threat model of {path}",
                               "keep RobustBench's <dataset>/<threat model>/<id>.json layout")  # fmt: skip
        digest = hashlib.sha256(raw).hexdigest()
        query = select(storage.ModelRecord).where(storage.ModelRecord.file_sha256 == digest,
                                                  storage.ModelRecord.source == REPORTED_SOURCE)  # fmt: skip
        if s.scalars(query).first() is not None:
            continue
        parse_eps(str(data["eps"]))
        reported = {**data, "threat_model": threat, "model_id": path.stem}
        s.add(storage.ModelRecord(name=path.stem, source=REPORTED_SOURCE, file_sha256=digest, weights_sha256=None,
                                  info={"name": path.stem, "reported": reported}))  # fmt: skip
        added += 1
    return added


def reported_entries(s: Session) -> list[dict[str, Any]]:
    """Every imported reported entry (the newest per model id, dataset and threat model)."""
    rows = s.scalars(select(storage.ModelRecord).where(storage.ModelRecord.source == REPORTED_SOURCE)
                     .order_by(storage.ModelRecord.created_at)).all()  # fmt: skip
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        rep = row.info["reported"]
        latest[(rep["model_id"], rep["dataset"], rep["threat_model"])] = rep
    return list(latest.values())


def percent(value: Any) -> float | None:
    """RobustBench's percentage strings ("65.88") as fractions; None when absent or not a number."""
    try:
        return float(value) / 100
    except (TypeError, ValueError):
        return None
