"""``robint-bench results --json``: one completed run (or one imported reported entry) as a plain dict.

Keep the shape stable: scripts and CI read it. Extend, never rename. ``kind`` tells a run measured here
(``"measured"``) from a run imported from an archive file with ``import`` (``"imported"``: verified against its
rows, not measured here) and from a number imported with ``import-robustbench`` (``"reported"``, with the file's
fields under ``reported``).
"""

from __future__ import annotations

from typing import Any

from harness import store
from harness.core.errors import HarnessError
from harness.core.threat import parse_eps
from harness.store.robustbench import best_known, percent
from harness.store.summary import iso, metric_summary


def result_record(run: store.RunRecord) -> dict[str, Any]:
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
        "created_at": iso(run.created_at),
        "finished_at": iso(run.finished_at),
        "versions": run.provenance.get("versions", {}),
        "git": run.provenance.get("git", {}),
        "hardware": run.provenance.get("hardware", {}),
        "flags": run.flags,
        "autoattack": {
            key: (run.details or {}).get("autoattack", {}).get(key) for key in ("accuracy_after", "warnings")
        },
        "model_sha256": {"file": run.model.file_sha256, "weights": run.model.weights_sha256},
        "metrics": metric_summary(run),
        "kind": "imported" if isinstance((run.details or {}).get("imported"), dict) else "measured",
    }


def reported_record(rep: dict[str, Any]) -> dict[str, Any]:
    """An imported reported entry with the same keys as a run (``kind: "reported"``; what was not measured here is
    None or empty). ``robust_acc`` is the accuracy RobustBench ranks it by (``external`` when the file has one, else
    ``autoattack_acc``; ``corruptions_acc`` for corruptions)."""
    eps = rep.get("eps")
    try:
        eps_value, eps_text = parse_eps(str(eps)) if eps is not None else (None, "")
    except HarnessError:
        eps_value, eps_text = None, str(eps)
    imported = rep.get("imported_at")
    return {
        "run_id": None,
        "model": rep["model_id"],
        "dataset": rep["dataset"],
        "threat_model": rep["threat_model"],
        "eps": eps_value,
        "eps_text": eps_text,
        "n_examples": None,
        "seed": None,
        "attack": None,
        "clean_acc": percent(rep.get("clean_acc")),
        "robust_acc": best_known(rep),
        "status": "reported",
        "created_at": imported.isoformat() if imported is not None else None,
        "finished_at": None,
        "versions": {},
        "git": {},
        "hardware": {},
        "flags": list(rep.get("flags") or []),
        "autoattack": {"accuracy_after": None, "warnings": None},
        "model_sha256": {"file": rep.get("file_sha256"), "weights": None},
        "metrics": {},
        "kind": "reported",
        "reported": {k: v for k, v in rep.items() if k not in ("imported_at", "flags", "file_sha256")},
    }
