"""A run's feature visualisation (model side): representation inversions and class-conditional generations.

:func:`visualise` produces images only; it runs next to the model (inside the sandboxed worker). The scores
that compare them with real images (SSIM, PSNR, reference-encoder distance, FID, judge accuracy) are computed
by the harness from the returned arrays with its own copy of the data (harness.featurevis_scores), so a
submission cannot influence them other than through the images it produced.

Defaults (``FeatureVisConfig``), chosen so that one model costs about a minute of CPU time on Fashion-MNIST:
the first 32 test images are inverted from two seeds each (another test image of a different class, and grey
noise; 300 steps of L2 size 1, the paper's step), and 30 images per class are generated (60 steps, L2 budget
15, step 0.25; see metrics.featurevis.generation). The seed paper uses 10,000 inversion steps on CIFAR-10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from metrics.featurevis.generation import class_seeds, fit_class_gaussians, generate, target_logit
from metrics.featurevis.inversion import inversion_loss, invert, noise_seeds, other_image_seeds
from metrics.featurevis.representation import RepresentationUnavailable, representation_fn

SEED_KINDS: tuple[str, ...] = ("other image", "noise")
MAX_SEED_DIMS = 1024  # the class Gaussians' dimension C*(H/d)*(W/d) is kept at or below this


@dataclass(frozen=True)
class FeatureVisConfig:
    """What a run's feature visualisation computes; part of its stored settings."""

    n_inversion: int = 32
    inversion_steps: int = 300
    inversion_step_size: float = 1.0
    noise_amplitude: float = 0.05
    per_class: int = 30
    generation_steps: int = 60
    generation_eps: float = 15.0
    generation_step_size: float = 0.25
    downsample: int = 4
    seed: int = 0
    batch_size: int = 256

    def validate(self) -> None:
        for name in ("n_inversion", "inversion_steps", "per_class", "generation_steps", "downsample", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"featurevis {name} must be a positive integer, got {value!r}")
        if self.n_inversion < 2:
            raise ValueError("featurevis n_inversion must be at least 2 (each target is seeded with another image)")
        for name in ("inversion_step_size", "generation_eps", "generation_step_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"featurevis {name} must be positive, got {getattr(self, name)!r}")


def seed_downsample(shape: tuple[int, int, int], first: int) -> int:
    """The pooling factor for the class Gaussians: ``first``, doubled while C*(H/d)*(W/d) > MAX_SEED_DIMS."""
    c, h, w = shape
    d = first
    while c * (h // d) * (w // d) > MAX_SEED_DIMS and h % (2 * d) == 0 and w % (2 * d) == 0:
        d *= 2
    return d


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
        progress: a progress bar on stderr counting the optimisation steps (about a minute on a CPU).

    Returns:
        ``{"inversion": {...} | {"skipped": reason}, "generation": {...} | {"skipped": reason}}``; arrays are CPU
        float32 tensors: inversion ``targets`` (n,), ``how``, per seed kind ``seed_index`` (other image only),
        ``images`` (n, C, H, W), ``loss_seed`` and ``loss_final`` (n,); generation ``classes`` (M,),
        ``images`` (M, C, H, W), ``logit_seed`` and ``logit_final`` (M,), ``downsample``.
    """
    config.validate()
    n = min(config.n_inversion, len(x))
    inversion_steps = len(SEED_KINDS) * -(-n // config.batch_size) * (config.inversion_steps + 1) if n >= 2 else 0
    generation_steps = -(-num_classes * config.per_class // config.batch_size) * config.generation_steps
    with _Steps(inversion_steps + generation_steps, enabled=progress) as steps:
        inversion = _inversions(model, x, y, config, device, steps)
        if "skipped" in inversion:
            steps.drop(inversion_steps)
        generation = _generations(model, x_train, y_train, config, num_classes, tuple(x.shape[1:]), device, steps)
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
        """Steps that will not run after all (a skipped part)."""
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
    model: nn.Module, x: Tensor, y: Tensor, config: FeatureVisConfig, device, steps: _Steps
) -> dict[str, Any]:
    n = min(config.n_inversion, len(x))
    if n < 2:
        return {"skipped": f"inversion needs at least 2 test images, the run has {len(x)}"}
    try:
        rep_fn, how = representation_fn(model)
        targets = x[:n].to(device)
        rep_fn(targets[:1])
    except RepresentationUnavailable as exc:
        return {"skipped": f"no penultimate representation: {exc.reason}"}
    other, index = other_image_seeds(targets, y[:n])
    generator = torch.Generator().manual_seed(config.seed)
    noise = noise_seeds(targets.shape, amplitude=config.noise_amplitude, generator=generator, device=device)
    out: dict[str, Any] = {"how": how, "targets": torch.arange(n), "kinds": {}}
    for kind, seeds in zip(SEED_KINDS, (other, noise), strict=True):
        images = invert(
            steps.counted(rep_fn),
            targets,
            seeds,
            steps=config.inversion_steps,
            step_size=config.inversion_step_size,
            final_step_size=None,
            batch_size=config.batch_size,
        )
        out["kinds"][kind] = {
            "images": images.float().cpu(),
            "loss_seed": inversion_loss(rep_fn, seeds, targets).float().cpu(),
            "loss_final": inversion_loss(rep_fn, images, targets).float().cpu(),
        }
    out["kinds"]["other image"]["seed_index"] = index.cpu()
    return out


def _generations(
    model: nn.Module,
    x_train: Tensor,
    y_train: Tensor,
    config: FeatureVisConfig,
    num_classes: int,
    shape: tuple[int, int, int],
    device,
    steps: _Steps,
) -> dict[str, Any]:
    downsample = seed_downsample(shape, config.downsample)
    _, h, w = shape
    if h % downsample or w % downsample:
        return {"skipped": f"images of {h}x{w} cannot be pooled by {downsample} for the seed Gaussians"}
    gaussians = fit_class_gaussians(x_train, y_train, num_classes=num_classes, downsample=downsample)
    classes = torch.arange(num_classes).repeat_interleave(config.per_class)
    generator = torch.Generator().manual_seed(config.seed + 1)
    seeds = class_seeds(gaussians, classes, size=(h, w), generator=generator).to(device)
    classes_d = classes.to(device)
    images = generate(
        _CountedModel(model, steps),
        seeds,
        classes_d,
        steps=config.generation_steps,
        eps=config.generation_eps,
        step_size=config.generation_step_size,
        batch_size=config.batch_size,
    )
    logit_seed = torch.cat(
        [
            target_logit(model, seeds[i : i + config.batch_size], classes_d[i : i + config.batch_size])
            for i in range(0, len(seeds), config.batch_size)
        ]
    )
    logit_final = torch.cat(
        [
            target_logit(model, images[i : i + config.batch_size], classes_d[i : i + config.batch_size])
            for i in range(0, len(images), config.batch_size)
        ]
    )
    return {
        "classes": classes,
        "images": images.float().cpu(),
        "seeds": seeds.float().cpu(),
        "logit_seed": logit_seed.float().cpu(),
        "logit_final": logit_final.float().cpu(),
        "downsample": downsample,
    }


__all__ = ["SEED_KINDS", "FeatureVisConfig", "seed_downsample", "visualise"]
