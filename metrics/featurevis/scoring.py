"""Scores of a run's feature visualisations, computed from the worker's images by the caller (the parent process).

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
  as many as generated) in the details; a 95% bootstrap interval resampling both the generated and the real
  features, centred on the estimate (metrics.stats.fid.fid_interval: it targets the FID at these sample sizes).
- ``generation_judge_accuracy`` ↑: fraction of generated images the reference classifier assigns to the class
  they were generated for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from metrics.featurevis.pipeline import SEED_KINDS
from metrics.featurevis.representation import representation_fn
from metrics.featurevis.scores import encode, fid, judge_accuracy, psnr, ssim
from metrics.registry import FEATUREVIS_METHOD as METHOD
from metrics.registry import METRICS
from metrics.stats.fid import fid_interval
from metrics.suite import MetricScore

N_BOOTSTRAP = 200  # FID interval replicates (both sets resampled: metrics.stats.fid.fid_interval)
NO_PROGRESS = (
    "no {what} moved from its seed: the model's input gradients are zero (gradient masking?), so a score would "
    "describe the seeds, not the model"
)


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
    """Refuse output of :func:`metrics.featurevis.pipeline.visualise` that does not have the promised shapes, range
    and classes (ValueError naming what is wrong)."""
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


def _malformed(what: str) -> ValueError:
    return ValueError(f"malformed feature visualisations ({what})")


def score(
    out: dict[str, Any],
    x: Tensor,
    real: Tensor,
    real_labels: Tensor,
    real_train: Tensor,
    reference: Reference,
    *,
    seed: int,
) -> list[MetricScore]:
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
    spec = METRICS.get(name)
    return {"family": spec.family, "higher_is_better": spec.higher_is_better, **extra}


def _skipped(names: list[str], reason: str) -> list[MetricScore]:
    return [MetricScore(METHOD, name, [], _details(name, not_applicable=reason)) for name in names]


def _inversion_scores(inv: dict[str, Any], x: Tensor, reference: Reference) -> list[MetricScore]:
    names = ["inversion_ssim", "inversion_psnr", "inversion_distance", "inversion_loss"]
    if "skipped" in inv:
        return _skipped(names, str(inv["skipped"]))
    n = len(tensor(inv["targets"]))
    if all(
        torch.equal(tensor(inv["kinds"][k]["loss_final"]), tensor(inv["kinds"][k]["loss_seed"])) for k in SEED_KINDS
    ):
        return _skipped(names, NO_PROGRESS.format(what="inversion"))
    targets = x[:n].float()
    per_kind: dict[str, dict[str, Tensor]] = {}
    for kind in SEED_KINDS:
        images = tensor(inv["kinds"][kind]["images"]).float()
        values = {
            "inversion_ssim": ssim(images, targets),
            "inversion_psnr": psnr(images, targets),
            "inversion_loss": tensor(inv["kinds"][kind]["loss_final"]).float(),
        }
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
        extra: dict[str, Any] = {
            "by_seed": {k: float(per_kind[k][name].double().mean()) for k in SEED_KINDS},
            "representation": how,
            "targets": n,
        }
        if name == "inversion_loss":
            extra["at_seed"] = {k: float(tensor(inv["kinds"][k]["loss_seed"]).double().mean()) for k in SEED_KINDS}
        scores.append(MetricScore(METHOD, name, [float(v) for v in pooled], _details(name, **extra)))
    return scores


def _generation_scores(
    gen: dict[str, Any], real: Tensor, real_labels: Tensor, real_train: Tensor, reference: Reference, seed: int
) -> list[MetricScore]:
    names = ["generation_fid", "generation_judge_accuracy"]
    if "skipped" in gen:
        return _skipped(names, str(gen["skipped"]))
    if reference.model is None:
        return _skipped(names, reference.reason or "no reference encoder")
    images, classes = tensor(gen["images"]).float(), tensor(gen["classes"]).long()
    gain = (tensor(gen["logit_final"]) - tensor(gen["logit_seed"])).double()
    if not bool((gain != 0).any()):
        return _skipped(names, NO_PROGRESS.format(what="generated image"))
    fake_f, real_f = reference.features(images).double(), reference.features(real).double()
    overall, low, high = fid_interval(fake_f, real_f, n_resamples=N_BOOTSTRAP, seed=seed)
    per_class = {
        str(k): fid(fake_f[classes == k], real_f[real_labels == k])
        for k in classes.unique().tolist()
        if int((classes == k).sum()) >= 2 and int((real_labels == k).sum()) >= 2
    }
    real_fid = fid(reference.features(real_train[: len(images)]).double(), real_f)
    fid_details = _details(
        "generation_fid",
        interval=[max(0.0, low), high],
        per_class=per_class,
        real_data_fid=real_fid,
        n_generated=len(images),
        n_real=len(real),
        logit_gain=float(gain.mean()),
        logit_raised=float((gain > 0).double().mean()),
    )
    judged = judge_accuracy(reference.model, images, classes).double()
    by_class = {str(k): float(judged[classes == k].mean()) for k in classes.unique().tolist()}
    return [
        MetricScore(METHOD, "generation_fid", [overall], fid_details),
        MetricScore(
            METHOD,
            "generation_judge_accuracy",
            [float(v) for v in judged],
            _details("generation_judge_accuracy", by_class=by_class),
        ),
    ]
