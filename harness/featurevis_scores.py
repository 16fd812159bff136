"""Scores of a run's feature visualisations, computed by the harness (parent side) from the worker's images.

The worker returns inversions and generated images (metrics.featurevis.pipeline); everything they are compared
with (the target test images, the real images of FID, the reference encoder / judge of harness.reference) is
the harness's own, so a submission influences the scores only through its images. Stored under the method
name ``featurevis``:

- ``inversion_ssim`` ↑, ``inversion_psnr`` ↑: between each inversion and its target image (both seed kinds
  pooled; per-kind means in the details).
- ``inversion_distance`` ↓: L2 distance between the two in the reference encoder's feature space (the paper's
  Inception-feature distance, here 192-d reference features).
- ``inversion_loss`` ↓: the model's own relative representation distance after inversion (reported by the
  worker; shows whether the optimisation converged).
- ``generation_fid`` ↓: FID between the generated images (all classes) and the first ``N_REAL`` real test images
  in reference-feature space; per-class FIDs and the real-data FID (training images vs the same test images,
  as many as generated) in the details; a 95% basic (pivotal) bootstrap interval over the generated images.
- ``generation_judge_accuracy`` ↑: fraction of generated images the reference classifier assigns to the class
  they were generated for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from harness.errors import HarnessError
from metrics.featurevis.pipeline import SEED_KINDS
from metrics.featurevis.representation import representation_fn
from metrics.featurevis.scores import encode, fid, judge_accuracy, psnr, ssim
from metrics.suite import MetricScore

METHOD = "featurevis"
N_REAL = 1000  # real test images FID compares with (fixed, so that runs of any n are comparable)
N_BOOTSTRAP = 100


@dataclass(frozen=True)
class ScoreSpec:
    name: str
    short: str
    higher_is_better: bool
    family: str


SCORES: dict[str, ScoreSpec] = {spec.name: spec for spec in (
    ScoreSpec("inversion_ssim", "Inv. SSIM", True, "inversion"),
    ScoreSpec("inversion_psnr", "Inv. PSNR", True, "inversion"),
    ScoreSpec("inversion_distance", "Inv. dist.", False, "inversion"),
    ScoreSpec("inversion_loss", "Inv. loss", False, "inversion"),
    ScoreSpec("generation_fid", "FID", False, "generation"),
    ScoreSpec("generation_judge_accuracy", "Judge acc.", True, "generation"),
)}  # fmt: skip
HEADLINE_SCORES: tuple[str, ...] = ("inversion_ssim", "inversion_distance", "generation_fid",
                                    "generation_judge_accuracy")  # fmt: skip


@dataclass
class Reference:
    """The reference classifier and its feature function (None where no reference ships for the data set)."""

    model: nn.Module | None
    reason: str | None = None

    def features(self, x: Tensor) -> Tensor:
        fn, _ = representation_fn(self.model)
        return encode(fn, x)


def tensor(value: Any) -> Tensor:
    """A CPU tensor from a worker array (numpy after the protocol, a tensor in process)."""
    return value.detach().cpu() if isinstance(value, Tensor) else torch.as_tensor(np.asarray(value))


def validate(out: dict[str, Any], x: Tensor, num_classes: int) -> None:
    """Refuse worker output that does not have the promised shapes, range and classes."""
    inv, gen = out.get("inversion"), out.get("generation")
    if not isinstance(inv, dict) or not isinstance(gen, dict):
        raise _malformed("no inversion or generation section")
    if "skipped" not in inv:
        n = len(tensor(inv["targets"]))
        if not 2 <= n <= len(x) or set(inv.get("kinds", {})) != set(SEED_KINDS):
            raise _malformed("inversion targets or seed kinds")
        for kind in SEED_KINDS:
            entry = inv["kinds"][kind]
            _check_images(tensor(entry["images"]), (n, *x.shape[1:]), f"inversion ({kind})")
            for key in ("loss_seed", "loss_final"):
                if tuple(tensor(entry[key]).shape) != (n,):
                    raise _malformed(f"inversion {key}")
    if "skipped" not in gen:
        classes = tensor(gen["classes"])
        m = len(classes)
        if m < 2 or classes.dtype != torch.int64 or bool((classes < 0).any()) or bool((classes >= num_classes).any()):
            raise _malformed("generation classes")
        _check_images(tensor(gen["images"]), (m, *x.shape[1:]), "generation")
        for key in ("logit_seed", "logit_final"):
            if tuple(tensor(gen[key]).shape) != (m,):
                raise _malformed(f"generation {key}")


def _check_images(images: Tensor, shape: tuple[int, ...], what: str) -> None:
    if tuple(images.shape) != shape or not bool(torch.isfinite(images).all()):
        raise _malformed(f"{what} images of shape {tuple(images.shape)} (expected {shape}, finite)")
    if bool((images < -1e-6).any()) or bool((images > 1 + 1e-6).any()):
        raise _malformed(f"{what} images outside [0, 1]")


def _malformed(what: str) -> HarnessError:
    return HarnessError(f"the worker returned malformed feature visualisations ({what})",
                        "the submission may be tampering; run with --trusted --debug to investigate")  # fmt: skip


def score(out: dict[str, Any], x: Tensor, real: Tensor, real_labels: Tensor, real_train: Tensor,
          reference: Reference, *, seed: int) -> list[MetricScore]:  # fmt: skip
    """The featurevis scores of one run.

    Args:
        out: the worker's :func:`metrics.featurevis.pipeline.visualise` output (validated here).
        x: the run's test images ``(N, C, H, W)`` (the harness's copy; inversion targets are its first rows).
        real, real_labels: the first ``N_REAL`` test images and labels (FID's real set, per class by label).
        real_train: training images, as many as generated, for the real-data FID.
        reference: the reference encoder / judge.
        seed: the run's seed (bootstrap resampling).
    """
    scores: list[MetricScore] = []
    inv, gen = out["inversion"], out["generation"]
    scores += _inversion_scores(inv, x, reference)
    scores += _generation_scores(gen, real, real_labels, real_train, reference, seed)
    return scores


def _details(name: str, **extra: Any) -> dict[str, Any]:
    spec = SCORES[name]
    return {"family": spec.family, "higher_is_better": spec.higher_is_better, **extra}


def _skipped(names: list[str], reason: str) -> list[MetricScore]:
    return [MetricScore(METHOD, name, [], _details(name, not_applicable=reason)) for name in names]


def _inversion_scores(inv: dict[str, Any], x: Tensor, reference: Reference) -> list[MetricScore]:
    names = ["inversion_ssim", "inversion_psnr", "inversion_distance", "inversion_loss"]
    if "skipped" in inv:
        return _skipped(names, str(inv["skipped"]))
    n = len(tensor(inv["targets"]))
    targets = x[:n].float()
    per_kind: dict[str, dict[str, Tensor]] = {}
    for kind in SEED_KINDS:
        images = tensor(inv["kinds"][kind]["images"]).float()
        values = {"inversion_ssim": ssim(images, targets), "inversion_psnr": psnr(images, targets),
                  "inversion_loss": tensor(inv["kinds"][kind]["loss_final"]).float()}  # fmt: skip
        if reference.model is not None:
            values["inversion_distance"] = (reference.features(images) - reference.features(targets)).norm(dim=1)
        per_kind[kind] = values
    how = str(inv.get("how", ""))
    scores = []
    for name in names:
        if name not in per_kind[SEED_KINDS[0]]:
            scores += _skipped([name], reference.reason or "no reference encoder")
            continue
        pooled = torch.cat([per_kind[kind][name] for kind in SEED_KINDS]).double()
        extra: dict[str, Any] = {"by_seed": {k: float(per_kind[k][name].double().mean()) for k in SEED_KINDS},
                                 "representation": how, "targets": n}  # fmt: skip
        if name == "inversion_loss":
            extra["at_seed"] = {k: float(tensor(inv["kinds"][k]["loss_seed"]).double().mean()) for k in SEED_KINDS}
        scores.append(MetricScore(METHOD, name, [float(v) for v in pooled], _details(name, **extra)))
    return scores


def _generation_scores(gen: dict[str, Any], real: Tensor, real_labels: Tensor, real_train: Tensor,
                       reference: Reference, seed: int) -> list[MetricScore]:  # fmt: skip
    names = ["generation_fid", "generation_judge_accuracy"]
    if "skipped" in gen:
        return _skipped(names, str(gen["skipped"]))
    if reference.model is None:
        return _skipped(names, reference.reason or "no reference encoder")
    images, classes = tensor(gen["images"]).float(), tensor(gen["classes"]).long()
    gain = (tensor(gen["logit_final"]) - tensor(gen["logit_seed"])).double()
    fake_f, real_f = reference.features(images).double(), reference.features(real).double()
    overall = fid(fake_f, real_f)
    rng = np.random.default_rng(seed)
    boots = [fid(fake_f[torch.as_tensor(rng.integers(0, len(fake_f), len(fake_f)))], real_f)
             for _ in range(N_BOOTSTRAP)]  # fmt: skip
    per_class = {str(k): fid(fake_f[classes == k], real_f[real_labels == k]) for k in classes.unique().tolist()
                 if int((classes == k).sum()) >= 2 and int((real_labels == k).sum()) >= 2}  # fmt: skip
    real_fid = fid(reference.features(real_train[: len(images)]).double(), real_f)
    # basic (pivotal) bootstrap interval: resampling with replacement duplicates images, which inflates every
    # replicate's FID, so the percentile interval would sit above the estimate; 2*FID - quantiles corrects that
    low, high = 2 * overall - float(np.percentile(boots, 97.5)), 2 * overall - float(np.percentile(boots, 2.5))
    fid_details = _details("generation_fid", interval=[max(0.0, low), high],
                           per_class=per_class, real_data_fid=real_fid, n_generated=len(images), n_real=len(real),
                           logit_gain=float(gain.mean()), logit_raised=float((gain > 0).double().mean()))  # fmt: skip
    judged = judge_accuracy(reference.model, images, classes).double()
    by_class = {str(k): float(judged[classes == k].mean()) for k in classes.unique().tolist()}
    return [MetricScore(METHOD, "generation_fid", [overall], fid_details),
            MetricScore(METHOD, "generation_judge_accuracy", [float(v) for v in judged],
                        _details("generation_judge_accuracy", by_class=by_class))]  # fmt: skip


def load_reference_for(dataset: str) -> Reference:
    """The reference of ``dataset``, or an empty one with the reason it is unavailable."""
    from harness.reference import load_reference, reference_spec

    if reference_spec(dataset) is None:
        return Reference(None, f"robint-bench ships no reference encoder for {dataset}")
    return Reference(load_reference(dataset))


def real_images(dataset: str, data_dir: Path, n_generated: int, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """FID's real sets: the first ``N_REAL`` test images and labels, and ``n_generated`` random training images."""
    from harness.data import load_examples

    real, labels = load_examples(dataset, n=N_REAL, data_dir=data_dir)
    x_train, _ = load_examples(dataset, split="train", data_dir=data_dir)
    pick = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed + 2))[:n_generated]
    return real, labels, x_train[pick]
