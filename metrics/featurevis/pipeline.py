"""A run's feature visualisation (model side): representation inversions and class-conditional generations.

:func:`visualise` produces images only; it runs next to the model (inside the sandboxed worker). The scores
that compare them with real images (SSIM, PSNR, reference-encoder distance, FID, judge accuracy) and with the
unmoved seeds (the no-op control) are computed by the harness from the returned arrays with its own copy of the
data and its own copy of the seeds (metrics.featurevis.seeds, metrics.featurevis.scoring), so a submission cannot
influence them other than through the images it produced.

Settings and defaults: metrics.featurevis.config (``FeatureVisConfig``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from metrics.featurevis.config import SEED_KINDS, FeatureVisConfig
from metrics.featurevis.generation import generate, target_logit
from metrics.featurevis.inversion import inversion_loss, invert
from metrics.featurevis.representation import RepresentationUnavailable, representation_fn
from metrics.featurevis.seeds import MAX_SEED_DIMS, GenerationSeeds, InversionSeeds, derive_seeds, seed_downsample


def visualise(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    x_train: Tensor,
    y_train: Tensor,
    *,
    config: FeatureVisConfig,
    num_classes: int,
    device: torch.device,
    progress: bool = False,
) -> dict[str, Any]:
    """Inversions of the first ``n_inversion`` images of x and ``per_class`` generated images per class.

    Args:
        model: logits for images in [0, 1], eval mode, on ``device``.
        x, y: test images ``(N, C, H, W)`` and labels ``(N,)`` (the first ``n_inversion`` are inverted).
        x_train, y_train: training images and labels (the class Gaussians of the generation seeds).
        progress: a progress bar on stderr counting the optimisation steps (up to the inversion cap).

    Returns:
        ``{"inversion": {...} | {"skipped": reason}, "generation": {...} | {"skipped": reason}}``; arrays are CPU
        tensors: inversion ``targets`` (n,), ``how``, per seed kind ``seed_index`` (other image only),
        ``images`` (n, C, H, W), ``loss_seed`` and ``loss_final`` (n,), ``steps`` (n,) int64 (gradient steps
        used); generation ``classes`` (M,), ``images`` and ``seeds`` (M, C, H, W), ``logit_seed`` and
        ``logit_final`` (M,), ``downsample``. Seeds come from metrics.featurevis.seeds.derive_seeds.
    """
    seeds = derive_seeds(x, y, x_train, y_train, config=config, num_classes=num_classes)
    n = 0 if seeds.inversion is None else len(seeds.inversion.targets)
    inversion_steps = len(SEED_KINDS) * -(-n // config.batch_size) * (config.inversion_steps + 2)
    generation_steps = -(-num_classes * config.per_class // config.batch_size) * config.generation_steps
    with _Steps(inversion_steps + generation_steps, enabled=progress) as steps:
        if seeds.inversion is None:
            inversion = {"skipped": seeds.skipped["inversion"]}
        else:
            inversion = _inversions(model, seeds.inversion, config, device, steps)
        if "skipped" in inversion:
            steps.drop(inversion_steps)
        if seeds.generation is None:
            generation = {"skipped": seeds.skipped["generation"]}
        else:
            generation = _generations(model, seeds.generation, config, device, steps)
    return {"inversion": inversion, "generation": generation}


class _Steps:
    """A progress bar over the optimisation steps (forward passes of the model inside invert and generate)."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="feature visualisation", unit="step", leave=False)

    def __enter__(self) -> _Steps:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def tick(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def drop(self, count: int) -> None:
        """Steps that will not run after all (a skipped part, or inversions that stopped before the cap)."""
        if self.bar is not None:
            self.bar.total -= count
            self.bar.refresh()

    def counted(self, fn):
        """``fn`` that ticks once per call."""

        def call(x: Tensor) -> Tensor:
            self.tick()
            return fn(x)

        return call


class _CountedModel(nn.Module):
    """``model`` that ticks ``steps`` once per forward pass (its state is untouched: it is only called)."""

    def __init__(self, model: nn.Module, steps: _Steps) -> None:
        super().__init__()
        self.inner, self.steps = model, steps

    def forward(self, x: Tensor) -> Tensor:
        self.steps.tick()
        return self.inner(x)


def _inversions(
    model: nn.Module, seeds: InversionSeeds, config: FeatureVisConfig, device, steps: _Steps
) -> dict[str, Any]:
    try:
        rep_fn, how = representation_fn(model)
        targets = seeds.targets.to(device)
        rep_fn(targets[:1])
    except RepresentationUnavailable as exc:
        return {"skipped": f"no penultimate representation: {exc.reason}"}
    out: dict[str, Any] = {"how": how, "targets": torch.arange(len(targets)), "kinds": {}}
    for kind in SEED_KINDS:
        start = seeds.seeds[kind].to(device)
        result = invert(
            steps.counted(rep_fn),
            targets,
            start,
            steps=config.inversion_steps,
            step_size=config.inversion_step_size,
            final_step_size=None,
            window=config.inversion_window,
            tol=config.inversion_tol,
            batch_size=config.batch_size,
        )
        steps.drop(-(-len(targets) // config.batch_size) * config.inversion_steps - _calls(result.steps, config))
        out["kinds"][kind] = {
            "images": result.images.float().cpu(),
            "loss_seed": inversion_loss(rep_fn, start, targets).float().cpu(),
            "loss_final": inversion_loss(rep_fn, result.images, targets).float().cpu(),
            "steps": result.steps.cpu(),
        }
    out["kinds"]["other image"]["seed_index"] = seeds.other_index.clone()
    return out


def _calls(used: Tensor, config: FeatureVisConfig) -> int:
    """Forward passes of :func:`invert` beyond two per chunk (the target's and the seed's): the steps of each
    chunk's longest-running example."""
    return sum(int(used[i : i + config.batch_size].max()) for i in range(0, len(used), config.batch_size))


def _generations(
    model: nn.Module, seeds: GenerationSeeds, config: FeatureVisConfig, device, steps: _Steps
) -> dict[str, Any]:
    start = seeds.seeds.to(device)
    classes_d = seeds.classes.to(device)
    images = generate(
        _CountedModel(model, steps),
        start,
        classes_d,
        steps=config.generation_steps,
        eps=config.generation_eps,
        step_size=config.generation_step_size,
        batch_size=config.batch_size,
    )
    b = config.batch_size
    logit_seed = torch.cat(
        [target_logit(model, start[i : i + b], classes_d[i : i + b]) for i in range(0, len(start), b)]
    )
    logit_final = torch.cat(
        [target_logit(model, images[i : i + b], classes_d[i : i + b]) for i in range(0, len(images), b)]
    )
    return {
        "classes": seeds.classes.clone(),
        "images": images.float().cpu(),
        "seeds": seeds.seeds.float().cpu(),
        "logit_seed": logit_seed.float().cpu(),
        "logit_final": logit_final.float().cpu(),
        "downsample": seeds.downsample,
    }


__all__ = ["MAX_SEED_DIMS", "SEED_KINDS", "FeatureVisConfig", "seed_downsample", "visualise"]
