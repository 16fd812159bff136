"""The starting points of a run's feature visualisation, derived from the data and the settings alone.

One function, :func:`derive_seeds`, used on both sides of the trust boundary: the worker starts its optimisation
from these seeds (metrics.featurevis.pipeline), and the parent derives the same seeds from its own copy of the data
to score the no-op control (the unmoved seeds, metrics.featurevis.scoring) and to check the worker's generations
against them. Nothing here depends on the model, so a submission cannot choose the no-op's numbers.

- inversion: targets ``x[:n]``; seeds of kind "other image" (:func:`other_image_seeds`: the next test image of a
  different class) and "noise" (:func:`noise_seeds` from ``torch.Generator().manual_seed(config.seed)``);
- generation: ``config.per_class`` seeds per class, in class order, drawn from class Gaussians fitted to the
  training images pooled by :func:`seed_downsample` (``torch.Generator().manual_seed(config.seed + 1)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from metrics.featurevis.config import SEED_KINDS, FeatureVisConfig
from metrics.featurevis.generation import class_seeds, fit_class_gaussians
from metrics.featurevis.inversion import noise_seeds, other_image_seeds

MAX_SEED_DIMS = 1024  # the class Gaussians' dimension C*(H/d)*(W/d) is kept at or below this


@dataclass(frozen=True)
class InversionSeeds:
    """Inversion targets ``(n, C, H, W)``, the seeds of each kind in SEED_KINDS ``(n, C, H, W)``, and the index
    ``(n,)`` of the test image that seeds each target in the "other image" kind."""

    targets: Tensor
    seeds: dict[str, Tensor]
    other_index: Tensor


@dataclass(frozen=True)
class GenerationSeeds:
    """Generation classes ``(M,)`` (int64), seeds ``(M, C, H, W)`` in [0, 1], and the Gaussians' pooling factor."""

    classes: Tensor
    seeds: Tensor
    downsample: int


@dataclass(frozen=True)
class Seeds:
    """A run's seeds; ``None`` where a part has none, with the reason in ``skipped[part]``."""

    config: FeatureVisConfig
    inversion: InversionSeeds | None
    generation: GenerationSeeds | None
    skipped: dict[str, str] = field(default_factory=dict)


def seed_downsample(shape: tuple[int, int, int], first: int) -> int:
    """The pooling factor for the class Gaussians: ``first``, doubled while C*(H/d)*(W/d) > MAX_SEED_DIMS."""
    c, h, w = shape
    d = first
    while c * (h // d) * (w // d) > MAX_SEED_DIMS and h % (2 * d) == 0 and w % (2 * d) == 0:
        d *= 2
    return d


def derive_seeds(
    x: Tensor,
    y: Tensor,
    x_train: Tensor,
    y_train: Tensor,
    *,
    config: FeatureVisConfig,
    num_classes: int,
) -> Seeds:
    """The seeds of a run's feature visualisation, on the CPU, from the data and settings alone.

    Args:
        x, y: test images ``(N, C, H, W)`` and labels ``(N,)`` (the first ``min(n_inversion, N)`` are inverted).
        x_train, y_train: training images and labels (the class Gaussians of the generation seeds).
        config: the run's settings (validated here).
        num_classes: K; generation seeds are ``arange(K).repeat_interleave(per_class)``.

    Raises:
        ValueError: bad settings (FeatureVisConfig.validate) or data (the seed functions' own errors).
    """
    config.validate()
    skipped: dict[str, str] = {}
    n = min(config.n_inversion, len(x))
    inversion = None
    if n < 2:
        skipped["inversion"] = f"inversion needs at least 2 test images, the run has {len(x)}"
    else:
        targets = x[:n].cpu()
        other, index = other_image_seeds(targets, y[:n].cpu())
        generator = torch.Generator().manual_seed(config.seed)
        noise = noise_seeds(targets.shape, amplitude=config.noise_amplitude, generator=generator)
        inversion = InversionSeeds(targets, dict(zip(SEED_KINDS, (other, noise), strict=True)), index)
    generation = None
    shape = tuple(x.shape[1:])
    downsample = seed_downsample(shape, config.downsample)
    _, h, w = shape
    if h % downsample or w % downsample:
        skipped["generation"] = f"images of {h}x{w} cannot be pooled by {downsample} for the seed Gaussians"
    else:
        gaussians = fit_class_gaussians(x_train.cpu(), y_train.cpu(), num_classes=num_classes, downsample=downsample)
        classes = torch.arange(num_classes).repeat_interleave(config.per_class)
        generator = torch.Generator().manual_seed(config.seed + 1)
        seeds = class_seeds(gaussians, classes, size=(h, w), generator=generator)
        generation = GenerationSeeds(classes, seeds, downsample)
    return Seeds(config, inversion, generation, skipped)


__all__ = ["MAX_SEED_DIMS", "GenerationSeeds", "InversionSeeds", "Seeds", "derive_seeds", "seed_downsample"]
