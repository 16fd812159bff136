"""Scores of a run's feature visualisations, computed from the worker's images by the caller (the parent process).

The worker returns inversions and generated images (metrics.featurevis.pipeline); everything they are compared
with (the target test images, the seeds, the real images of FID, the reference encoder / judge of
harness.reference) is the harness's own: the caller derives the seeds from its own data
(metrics.featurevis.seeds.derive_seeds), so a submission influences the scores only through its images. Stored
under the method name ``featurevis``:

- ``inversion_ssim`` ↑, ``inversion_psnr`` ↑: between each inversion and its target image (both seed kinds
  pooled; per-kind means in the details).
- ``inversion_distance`` ↓: L2 distance between the two in the reference encoder's feature space (the paper's
  Inception-feature distance, here 192-d reference features).
- ``inversion_loss`` ↓: the model's own relative representation distance after inversion (reported by the
  worker; with the steps each image used, it shows whether the optimisation converged).
- ``generation_fid`` ↓: FID between the generated images (all classes) and the first ``N_REAL`` real test images
  in reference-feature space; per-class FIDs and the real-data FID (training images vs the same test images,
  as many as generated) in the details; a 95% bootstrap interval resampling both the generated and the real
  features, centred on the estimate (as metrics.stats.fid.fid_interval: it targets the FID at these sample sizes).
- ``generation_judge_accuracy`` ↑: fraction of generated images the reference classifier assigns to the class
  they were generated for.

The no-op control (metrics.featurevis.noop): the same scores of the unmoved seeds, per example in the same order,
stored under ``featurevis_noop`` (all but ``inversion_loss``, which only the model can compute); each of those
scores of the model carries its comparison with the no-op in ``details["noop"]`` (difference, 95% interval,
``beats``, ``gain``). How far the optimisation went is returned as ``Scored.convergence`` (stored with the run).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from metrics.featurevis.config import SEED_KINDS
from metrics.featurevis.noop import compare_paired, fid_with_noop
from metrics.featurevis.representation import representation_fn
from metrics.featurevis.scores import encode, fid, judge_accuracy, psnr, ssim
from metrics.featurevis.seeds import Seeds
from metrics.registry import FEATUREVIS_METHOD as METHOD
from metrics.registry import FEATUREVIS_NOOP_METHOD as NOOP_METHOD
from metrics.registry import METRICS
from metrics.suite import MetricScore

N_BOOTSTRAP = 200  # FID interval replicates (both sets resampled: metrics.featurevis.noop.fid_with_noop)
PERFECT = {"inversion_ssim": 1.0, "inversion_psnr": None, "inversion_distance": 0.0, "generation_judge_accuracy": 1.0}
BALL_SLACK = 1e-3  # relative float32 slack of the generation ball check (observed overshoot: < 1e-5 relative)
UNMOVED = (
    "no {what} moved from its seed (zero input gradients, e.g. gradient masking, or no step lowered the loss): its "
    "scores would be those of the no-op control (stored as featurevis_noop), describing the seeds, not the model"
)


@dataclass
class Reference:
    """The reference classifier and its feature function (None where no reference ships for the data set)."""

    model: nn.Module | None
    reason: str | None = None

    def features(self, x: Tensor) -> Tensor:
        fn, _ = representation_fn(self.model)
        return encode(fn, x)


@dataclass
class Scored:
    """A run's feature-visualisation scores (methods ``featurevis`` and ``featurevis_noop``) and how far its
    optimisation went (``convergence``: steps used and losses, stored with the run)."""

    scores: list[MetricScore]
    convergence: dict[str, Any] = field(default_factory=dict)


def tensor(value: Any) -> Tensor:
    """A CPU tensor from a worker array (numpy after the protocol, a tensor in process)."""
    return value.detach().cpu() if isinstance(value, Tensor) else torch.as_tensor(np.asarray(value))


def validate(out: dict[str, Any], seeds: Seeds, num_classes: int) -> None:
    """Refuse output of :func:`metrics.featurevis.pipeline.visualise` that does not have the promised shapes, range,
    step counts and classes, or generations outside the L2 ball around the caller's own seeds (ValueError naming
    what is wrong)."""
    inv, gen = out.get("inversion"), out.get("generation")
    if not isinstance(inv, dict) or not isinstance(gen, dict):
        raise _malformed("no inversion or generation section")
    config = seeds.config
    if "skipped" not in inv:
        if seeds.inversion is None:
            raise _malformed("inversions where the run has no inversion targets")
        n, shape = len(seeds.inversion.targets), tuple(seeds.inversion.targets.shape[1:])
        if len(tensor(inv["targets"])) != n or set(inv.get("kinds", {})) != set(SEED_KINDS):
            raise _malformed("inversion targets or seed kinds")
        for kind in SEED_KINDS:
            entry = inv["kinds"][kind]
            _check_images(tensor(entry["images"]), (n, *shape), f"inversion ({kind})")
            for key in ("loss_seed", "loss_final"):
                if tuple(tensor(entry[key]).shape) != (n,):
                    raise _malformed(f"inversion {key}")
            steps = tensor(entry["steps"])
            if tuple(steps.shape) != (n,) or steps.is_floating_point() or steps.dtype == torch.bool:
                raise _malformed("inversion steps (integers, one per target)")
            if bool((steps < 0).any()) or bool((steps > config.inversion_steps).any()):
                raise _malformed(f"inversion steps outside [0, {config.inversion_steps}]")
    if "skipped" not in gen:
        if seeds.generation is None:
            raise _malformed("generations where the run has no generation seeds")
        classes = tensor(gen["classes"])
        m = len(seeds.generation.classes)
        if classes.dtype != torch.int64 or not torch.equal(classes, seeds.generation.classes):
            raise _malformed(f"generation classes (expected {config.per_class} per class of {num_classes}, in order)")
        images = tensor(gen["images"])
        _check_images(images, tuple(seeds.generation.seeds.shape), "generation")
        for key in ("logit_seed", "logit_final"):
            if tuple(tensor(gen[key]).shape) != (m,):
                raise _malformed(f"generation {key}")
        moved = (images.double() - seeds.generation.seeds.double()).flatten(1).norm(dim=1)
        if bool((moved > config.generation_eps * (1 + BALL_SLACK)).any()):
            raise _malformed(
                f"generated images up to {float(moved.max()):.4g} from their seeds, outside the L2 ball of "
                f"{config.generation_eps:g} around the harness's own seeds"
            )


def _check_images(images: Tensor, shape: tuple[int, ...], what: str) -> None:
    if tuple(images.shape) != shape or not bool(torch.isfinite(images).all()):
        raise _malformed(f"{what} images of shape {tuple(images.shape)} (expected {shape}, finite)")
    if bool((images < -1e-6).any()) or bool((images > 1 + 1e-6).any()):
        raise _malformed(f"{what} images outside [0, 1]")


def _malformed(what: str) -> ValueError:
    return ValueError(f"malformed feature visualisations ({what})")


def score(
    out: dict[str, Any],
    seeds: Seeds,
    real: Tensor,
    real_labels: Tensor,
    real_train: Tensor,
    reference: Reference,
    *,
    seed: int,
    score_unmoved: bool = False,
    n_bootstrap: int = N_BOOTSTRAP,
) -> Scored:
    """The featurevis scores of one run, their no-op control and the optimisation's convergence.

    A part (inversion or generation) none of whose images moved from its seed is degenerate: its featurevis scores
    are n/a with the reason (``UNMOVED``), its no-op rows are stored all the same; ``score_unmoved=True`` scores it
    anyway (its values are then exactly the no-op's).

    Args:
        out: the worker's :func:`metrics.featurevis.pipeline.visualise` output (checked by :func:`validate`).
        seeds: the run's seeds, derived by the caller from its own data (targets, inversion and generation seeds).
        real, real_labels: the first ``N_REAL`` test images and labels (FID's real set, per class by label).
        real_train: training images, as many as generated, for the real-data FID.
        reference: the reference encoder / judge.
        seed: the run's seed (bootstrap resampling).
        score_unmoved: score parts whose images all equal their seeds instead of reporting them n/a.
        n_bootstrap: replicates of the FID intervals (``N_BOOTSTRAP``; each costs two FIDs).
    """
    inv_scores, inv_convergence = _inversion_scores(out["inversion"], seeds, reference, seed)
    gen_scores, gen_convergence = _generation_scores(
        out["generation"], seeds, real, real_labels, real_train, reference, seed, n_bootstrap
    )
    if not score_unmoved:
        inv_scores = _unmoved_na(inv_scores, inv_convergence, "inversion")
        gen_scores = _unmoved_na(gen_scores, gen_convergence, "generated image")
    return Scored(inv_scores + gen_scores, {"inversion": inv_convergence, "generation": gen_convergence})


def _unmoved_na(scores: list[MetricScore], convergence: dict[str, Any], what: str) -> list[MetricScore]:
    """``scores`` with the model's rows replaced by n/a when no image moved (``convergence["moved"] == 0``)."""
    if convergence.get("moved", 1.0) > 0:
        return scores
    reason = UNMOVED.format(what=what)
    return [s if s.method == NOOP_METHOD else _skipped([s.metric], reason)[0] for s in scores]


def _details(name: str, **extra: Any) -> dict[str, Any]:
    spec = METRICS.get(name)
    return {"family": spec.family, "higher_is_better": spec.higher_is_better, **extra}


def _skipped(names: list[str], reason: str) -> list[MetricScore]:
    return [MetricScore(METHOD, name, [], _details(name, not_applicable=reason)) for name in names]


def _noop_score(name: str, values: Tensor, by_seed: dict[str, float] | None = None, **extra: Any) -> MetricScore:
    details = _details(name, control="the unmoved seeds (no-op)", **extra)
    if by_seed is not None:
        details["by_seed"] = by_seed
    return MetricScore(NOOP_METHOD, name, [float(v) for v in values.double()], details)


def _inversion_scores(
    inv: dict[str, Any], seeds: Seeds, reference: Reference, seed: int
) -> tuple[list[MetricScore], dict[str, Any]]:
    names = ["inversion_ssim", "inversion_psnr", "inversion_distance", "inversion_loss"]
    if "skipped" in inv:
        return _skipped(names, str(inv["skipped"])), {"skipped": str(inv["skipped"])}
    targets = seeds.inversion.targets.float()
    target_features = reference.features(targets) if reference.model is not None else None
    result: dict[str, dict[str, Tensor]] = {}
    noop: dict[str, dict[str, Tensor]] = {}
    for kind in SEED_KINDS:
        images, start = tensor(inv["kinds"][kind]["images"]).float(), seeds.inversion.seeds[kind].float()
        result[kind] = {
            "inversion_ssim": ssim(images, targets),
            "inversion_psnr": psnr(images, targets),
            "inversion_loss": tensor(inv["kinds"][kind]["loss_final"]).float(),
        }
        noop[kind] = {"inversion_ssim": ssim(start, targets), "inversion_psnr": psnr(start, targets)}
        if target_features is not None:
            result[kind]["inversion_distance"] = (reference.features(images) - target_features).norm(dim=1)
            noop[kind]["inversion_distance"] = (reference.features(start) - target_features).norm(dim=1)
    moved = {k: _moved(tensor(inv["kinds"][k]["images"]), seeds.inversion.seeds[k]) for k in SEED_KINDS}
    convergence = {**_inversion_convergence(inv, seeds), "moved": sum(moved.values()) / len(moved)}
    scores = []
    for name in names:
        if name not in result[SEED_KINDS[0]]:
            scores += _skipped([name], reference.reason or "no reference encoder")
            continue
        pooled = torch.cat([result[kind][name] for kind in SEED_KINDS]).double()
        extra: dict[str, Any] = {
            "by_seed": {k: float(result[k][name].double().mean()) for k in SEED_KINDS},
            "representation": str(inv.get("how", "")),
            "targets": len(targets),
            "moved": moved,
        }
        if name == "inversion_loss":
            extra["at_seed"] = {k: float(tensor(inv["kinds"][k]["loss_seed"]).double().mean()) for k in SEED_KINDS}
            extra["convergence"] = convergence
        else:
            stacked = [torch.stack([by_kind[k][name] for k in SEED_KINDS]).numpy() for by_kind in (result, noop)]
            spec = METRICS.get(name)
            comparison = compare_paired(
                *stacked, higher_is_better=spec.higher_is_better, perfect=PERFECT[name], seed=seed
            )
            extra["noop"] = comparison.details()
            noop_values = torch.cat([noop[kind][name] for kind in SEED_KINDS])
            by_seed = {k: float(noop[k][name].double().mean()) for k in SEED_KINDS}
            scores.append(_noop_score(name, noop_values, by_seed, targets=len(targets)))
        scores.append(MetricScore(METHOD, name, [float(v) for v in pooled], _details(name, **extra)))
    return scores, convergence


def _inversion_convergence(inv: dict[str, Any], seeds: Seeds) -> dict[str, Any]:
    """Steps used (mean, max, share stopped by the rule before the cap) and mean losses, per seed kind and pooled."""
    config = seeds.config
    cap = config.inversion_steps

    def summary(steps: Tensor, seed_loss: Tensor, final_loss: Tensor) -> dict[str, Any]:
        steps = steps.long()
        return {
            "steps_mean": float(steps.double().mean()),
            "steps_max": int(steps.max()),
            "converged": float((steps < cap).double().mean()),
            "loss_seed": float(seed_loss.double().mean()),
            "loss_final": float(final_loss.double().mean()),
        }

    parts = {k: [tensor(inv["kinds"][k][key]) for key in ("steps", "loss_seed", "loss_final")] for k in SEED_KINDS}
    pooled = summary(*(torch.cat([parts[k][i] for k in SEED_KINDS]) for i in range(3)))
    rule = {"cap": cap, "window": config.inversion_window, "tol": config.inversion_tol}
    return {**rule, **pooled, "by_seed": {k: summary(*parts[k]) for k in SEED_KINDS}}


def _generation_scores(
    gen: dict[str, Any],
    seeds: Seeds,
    real: Tensor,
    real_labels: Tensor,
    real_train: Tensor,
    reference: Reference,
    seed: int,
    n_bootstrap: int,
) -> tuple[list[MetricScore], dict[str, Any]]:
    names = ["generation_fid", "generation_judge_accuracy"]
    if "skipped" in gen:
        return _skipped(names, str(gen["skipped"])), {"skipped": str(gen["skipped"])}
    images, classes = tensor(gen["images"]).float(), seeds.generation.classes
    start = seeds.generation.seeds.float()
    logit_gain = (tensor(gen["logit_final"]) - tensor(gen["logit_seed"])).double()
    distance = (images.double() - start.double()).flatten(1).norm(dim=1)
    config = seeds.config
    convergence = {
        "moved": _moved(images, start),
        "rule": "fixed budget (the paper's): every image takes all steps inside the L2 ball",
        "steps": config.generation_steps,
        "eps": config.generation_eps,
        "logit_seed": float(tensor(gen["logit_seed"]).double().mean()),
        "logit_final": float(tensor(gen["logit_final"]).double().mean()),
        "distance_mean": float(distance.mean()),
        "at_ball_edge": float((distance >= 0.99 * config.generation_eps).double().mean()),
    }
    if reference.model is None:
        return _skipped(names, reference.reason or "no reference encoder"), convergence
    fake_f, seed_f = reference.features(images).double(), reference.features(start).double()
    real_f = reference.features(real).double()
    real_fid = fid(reference.features(real_train[: len(images)]).double(), real_f)
    both = fid_with_noop(
        fake_f.numpy(), seed_f.numpy(), real_f.numpy(), perfect=real_fid, n_resamples=n_bootstrap, seed=seed
    )
    overall, low, high = both.result
    shared = {"real_data_fid": real_fid, "n_generated": len(images), "n_real": len(real)}
    fid_details = _details(
        "generation_fid",
        interval=[max(0.0, low), high],
        per_class=_per_class_fid(fake_f, classes, real_f, real_labels),
        logit_gain=float(logit_gain.mean()),
        logit_raised=float((logit_gain > 0).double().mean()),
        noop=both.comparison.details(),
        convergence=convergence,
        **shared,
    )
    noop_fid, noop_low, noop_high = both.noop
    noop_fid_details = _details(
        "generation_fid",
        control="the unmoved seeds (no-op)",
        interval=[max(0.0, noop_low), noop_high],
        per_class=_per_class_fid(seed_f, classes, real_f, real_labels),
        **shared,
    )
    judged = judge_accuracy(reference.model, images, classes).double()
    judged_seed = judge_accuracy(reference.model, start, classes).double()
    judge_noop = compare_paired(
        judged.numpy(),
        judged_seed.numpy(),
        higher_is_better=True,
        perfect=PERFECT["generation_judge_accuracy"],
        seed=seed,
    )
    scores = [
        MetricScore(METHOD, "generation_fid", [overall], fid_details),
        MetricScore(NOOP_METHOD, "generation_fid", [noop_fid], noop_fid_details),
        MetricScore(
            METHOD,
            "generation_judge_accuracy",
            [float(v) for v in judged],
            _details("generation_judge_accuracy", by_class=_by_class(judged, classes), noop=judge_noop.details()),
        ),
        _noop_score("generation_judge_accuracy", judged_seed, by_class=_by_class(judged_seed, classes)),
    ]
    return scores, convergence


def _moved(images: Tensor, seeds: Tensor) -> float:
    """The share of images that differ from their seed anywhere."""
    return float((images.to(seeds.dtype) != seeds).flatten(1).any(dim=1).double().mean())


def _per_class_fid(features: Tensor, classes: Tensor, real_f: Tensor, real_labels: Tensor) -> dict[str, float]:
    return {
        str(k): fid(features[classes == k], real_f[real_labels == k])
        for k in classes.unique().tolist()
        if int((classes == k).sum()) >= 2 and int((real_labels == k).sum()) >= 2
    }


def _by_class(values: Tensor, classes: Tensor) -> dict[str, float]:
    return {str(k): float(values[classes == k].mean()) for k in classes.unique().tolist()}
