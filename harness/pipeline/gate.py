"""The regression gate's measurement: a fixed, fast configuration run on the reference models (harness.report.gate
compares the numbers with the committed baseline).

Configuration (``GATE``): the first 64 Fashion-MNIST test images, AutoAttack ``apgd-ce`` (Linf 0.1), seed 0,
saliency and integrated gradients x ABPC, relative deletion, relevance mass ratio and sparseness on the first
16 images.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from harness import store
from harness.core.config import RunConfig
from harness.core.errors import HarnessError
from harness.pipeline.evaluate import evaluate
from harness.report.results import result_record

GATE: dict[str, Any] = {
    "n_examples": 64,
    "batch_size": 64,
    "attack": "apgd-ce",
    "seed": 0,
    "methods": "saliency,integrated_gradients",
    "metrics": "abpc,deletion_relative,relevance_mass_ratio,sparseness",
    "n_explain": 16,
}


REFERENCE_MODELS = ("fmnist_standard", "fmnist_pgd_linf", "fmnist_trades_linf")


def measure(submissions: Path, models: tuple[str, ...], *, data_dir: Path | None, progress: bool) -> dict[str, Any]:
    """Run the gate configuration on each model; returns the numbers in the baseline's shape."""
    out: dict[str, Any] = {"config": GATE, "models": {}}
    with tempfile.TemporaryDirectory(prefix="robint-gate-") as tmp:
        db = f"sqlite:///{tmp}/gate.db"
        for name in models:
            path = submissions / f"{name}.py"
            if not path.is_file():
                raise HarnessError(f"reference model {path} not found", "pass --submissions DIR holding it")
            summary = evaluate(RunConfig(model=path, db=db, data_dir=data_dir, progress=progress, **GATE))
            with store.transaction(store.open_database(db)) as s:
                record = result_record(store.get_run(s, summary.run_id))
            n = record["n_examples"]
            entry: dict[str, Any] = {
                "clean_acc": {"value": record["clean_acc"], "n": n},
                "robust_acc": {"value": record["robust_acc"], "n": n},
            }
            for method, scores in record["metrics"].items():
                for metric, stats in scores.items():
                    entry[f"{method}/{metric}"] = {"value": stats["mean"], "std": stats["std"], "n": stats["n"]}
            out["models"][name] = entry
    return out
