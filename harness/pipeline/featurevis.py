"""The feature-visualisation stage, parent side: ask the worker for inversions and generations, then score them
with the harness's own test images, seeds, real-image sets and reference encoder (metrics.featurevis.scoring): the
model's scores, the no-op control (the same scores of the unmoved seeds, method ``featurevis_noop``) and the
optimisation's convergence (run details)."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from harness import store
from harness.core.config import ResolvedConfig
from harness.core.errors import HarnessError
from harness.pipeline import validate
from harness.pipeline.artifacts import FIGURE_ROWS, pack
from harness.pipeline.images import send_images
from harness.pipeline.scores import metric_record
from harness.worker.protocol import VisualiseRequest
from metrics.featurevis import scoring
from metrics.featurevis.pipeline import FeatureVisConfig
from metrics.featurevis.scoring import Reference, tensor
from metrics.featurevis.seeds import Seeds, derive_seeds
from metrics.registry import FEATUREVIS_METHOD as METHOD

N_REAL = 1000  # real test images FID compares with (fixed, so that runs of any n are comparable)


def load_reference_for(dataset: str) -> Reference:
    """The reference of ``dataset``, or an empty one with the reason it is unavailable."""
    from harness.reference import load_reference, reference_spec

    if reference_spec(dataset) is None:
        return Reference(None, f"robint-bench ships no reference encoder for {dataset}")
    return Reference(load_reference(dataset))


def real_images(
    dataset: str, data_dir: Path, n_generated: int, seed: int, *, train: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """FID's real sets: the first ``N_REAL`` test images and labels, and ``n_generated`` random training images
    (of ``train``, the training images when already loaded)."""
    from harness.data import load_examples

    real, labels = load_examples(dataset, n=N_REAL, data_dir=data_dir)
    x_train = load_examples(dataset, split="train", data_dir=data_dir)[0] if train is None else train
    pick = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed + 2))[:n_generated]
    return real, labels, x_train[pick]


def run_seeds(
    dataset: str, data_dir: Path, x: Tensor, featurevis: FeatureVisConfig, num_classes: int
) -> tuple[Seeds, Tensor]:
    """The run's seeds, derived here from the harness's own test images (``x``, the run's first images, and their
    labels) and training split (metrics.featurevis.seeds), and the training images (for FID's real-data set)."""
    from harness.data import load_examples

    _, y = load_examples(dataset, n=len(x), data_dir=data_dir)
    x_train, y_train = load_examples(dataset, split="train", data_dir=data_dir)
    return derive_seeds(x, y, x_train, y_train, config=featurevis, num_classes=num_classes), x_train


def missing_featurevis(sessions, run_id: str, featurevis: FeatureVisConfig) -> bool:
    """True when the run has no featurevis scores; an error when it has some computed with other settings."""
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        have = any(m.method == METHOD for m in run.metrics)
        stored = run.details.get("featurevis", {}).get("settings")
    wanted = json.loads(json.dumps(asdict(featurevis)))
    wanted.pop("batch_size")
    if have and stored is not None and stored != wanted:
        diff = ", ".join(f"{k} {stored.get(k)} vs {v}" for k, v in wanted.items() if stored.get(k) != v)
        raise HarnessError(
            f"run {run_id} holds feature-visualisation scores computed with other settings ({diff})",
            "pass --fresh for a new run, or repeat the stored settings",
        )
    return not have


def visualise_and_score(
    sessions,
    channel,
    run_id: str,
    featurevis: FeatureVisConfig,
    x: torch.Tensor,
    resolved: ResolvedConfig,
    info,
    data_dir: Path,
    budgets,
) -> None:
    """Ask the worker for inversions and generations; score them here with the harness's own data (from
    ``data_dir``) and encoder."""
    featurevis = replace(featurevis, batch_size=resolved.batch_size)
    from harness.data import load_examples

    x_train, y_train = load_examples(resolved.dataset, split="train", data_dir=data_dir)
    send_images(channel, "train", x_train, y_train, budgets.load)  # its class seeds are fitted on them
    del x_train, y_train
    out = channel.request(
        VisualiseRequest(op="visualise", config=asdict(featurevis)),
        budget=budgets.visualise(featurevis, info.num_classes),
        max_line=validate.max_line_visualise(featurevis, tuple(x.shape[1:]), info.num_classes),
    )
    seeds, x_train = run_seeds(resolved.dataset, data_dir, x, featurevis, info.num_classes)
    out = validate.visualised(out, x, info.num_classes, seeds)
    reference = load_reference_for(resolved.dataset)
    n_generated = 0 if "skipped" in out["generation"] else len(tensor(out["generation"]["classes"]))
    real, real_labels, real_train = real_images(
        resolved.dataset, data_dir, max(n_generated, 2), resolved.seed, train=x_train
    )
    scored = scoring.score(out, seeds, real, real_labels, real_train, reference, seed=resolved.seed)
    settings = json.loads(json.dumps(asdict(featurevis)))
    settings.pop("batch_size")
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        for item in scored.scores:
            s.add(metric_record(run_id, item.method, item.metric, item.values, item.details))
        arrays = _featurevis_arrays(out, seeds, reference)
        s.merge(store.ArtifactRecord(run_id=run_id, key="featurevis", data=pack(**arrays)))
        run.details = {**run.details, "featurevis": {"settings": settings, "convergence": scored.convergence}}
        run.heartbeat_at = store.utcnow()


def _featurevis_arrays(out: dict[str, Any], seeds: Seeds, reference: Reference) -> dict[str, Any]:
    """The images the run's feature-visualisation figures show (the seeds are the harness's own)."""
    arrays: dict[str, Any] = {}
    inv, gen = out["inversion"], out["generation"]
    if "skipped" not in inv:
        k = min(FIGURE_ROWS, len(seeds.inversion.targets))
        arrays["inv_targets"] = seeds.inversion.targets[:k].numpy()
        arrays["inv_seed_other"] = seeds.inversion.seeds["other image"][:k].numpy()
        arrays["inv_other"] = tensor(inv["kinds"]["other image"]["images"])[:k].numpy()
        arrays["inv_noise"] = tensor(inv["kinds"]["noise"]["images"])[:k].numpy()
        arrays["inv_seed_noise"] = seeds.inversion.seeds["noise"][:k].numpy()
    if "skipped" not in gen:
        arrays["gen_images"] = tensor(gen["images"]).numpy()
        arrays["gen_classes"] = seeds.generation.classes.numpy()
        if reference.model is not None:
            with torch.no_grad():
                arrays["gen_judge"] = reference.model(tensor(gen["images"]).float()).argmax(1).numpy()
    return arrays
