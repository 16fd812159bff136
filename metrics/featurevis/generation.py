"""Class-specific image generation (Santurkar et al. 2019, "Image synthesis with a single (robust) classifier").

Seeds come from a class-conditional Gaussian fitted to 4x-downsampled images of the class (mean and full
covariance of the downsampled pixels plus a small diagonal regulariser), sampled and upsampled (bilinear) to
the input size and clamped to [0, 1]. :func:`generate` then maximises the target logit with L2-normalised
gradient steps, projected onto the L2 ball of radius ``eps`` around the seed and onto [0, 1].

Defaults for 28x28x1: the paper's CIFAR-10 setting (60 steps, eps 30, step 0.5 on 32x32x3 = 3072 values)
scaled by sqrt(784 / 3072) = 0.505, which keeps the per-pixel RMS budget (eps / sqrt(dims) = 0.54) and the
ratio steps * step_size / eps = 1: 60 steps, eps 15, step 0.25. 64 images cost ~7 s of CPU time (one thread) with a
shipped ``gap-cnn``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metrics.featurevis._common import check_positive, check_unit_range, project_l2, unit_l2
from metrics.functional._checks import check_generator, check_images, check_positive_int, check_target, describe

DEFAULT_STEPS = 60
DEFAULT_EPS = 15.0
DEFAULT_STEP_SIZE = 0.25
DEFAULT_DOWNSAMPLE = 4
DEFAULT_REGULARISER = 1e-4


@dataclass(frozen=True)
class ClassGaussians:
    """One Gaussian per class over downsampled images: ``mean (K, D)``, ``scale_tril (K, D, D)`` (Cholesky factor
    of the regularised covariance), downsampled shape ``(C, h, w)`` with ``D = C*h*w``, and ``counts (K,)``."""

    mean: Tensor
    scale_tril: Tensor
    shape: tuple[int, int, int]
    counts: Tensor

    @property
    def num_classes(self) -> int:
        return self.mean.shape[0]


def fit_class_gaussians(
    x: Tensor,
    y: Tensor,
    *,
    num_classes: int,
    downsample: int = DEFAULT_DOWNSAMPLE,
    regulariser: float = DEFAULT_REGULARISER,
) -> ClassGaussians:
    """Fit a Gaussian per class to ``downsample``-x average-pooled images (the seed distribution).

    Covariance: ``cov(class) + regulariser * I`` (maximum likelihood, ddof 0); computed in float64.

    Args:
        x: float ``(N, C, H, W)`` in [0, 1] (training images); ``downsample`` must divide H and W.
        y: int64 ``(N,)`` labels in ``[0, num_classes)``; every class needs at least 2 images.
        num_classes: K.
        downsample: pooling factor (4: 28x28 -> 7x7, D = 49 for Fashion-MNIST).
        regulariser: added to the covariance diagonal (> 0) so that it is positive definite.

    Raises:
        ValueError: naming the bad argument (shape, divisibility, a class with fewer than 2 images).
    """
    check_images(x, "x")
    y = check_target(y, len(x), x.device)
    check_positive_int(num_classes, "num_classes")
    check_positive_int(downsample, "downsample")
    check_positive(regulariser, "regulariser")
    _, c, h, w = x.shape
    if h % downsample or w % downsample:
        raise ValueError(f"downsample {downsample} must divide the image size {h}x{w}")
    if bool((y >= num_classes).any()):
        raise ValueError(f"y holds class indices >= num_classes ({num_classes})")
    small = F.avg_pool2d(x.double(), downsample).flatten(1)
    means, trils, counts = [], [], []
    eye = torch.eye(small.shape[1], dtype=torch.float64, device=x.device)
    for k in range(num_classes):
        xk = small[y == k]
        if len(xk) < 2:
            raise ValueError(f"class {k} has {len(xk)} images in y; fitting its Gaussian needs at least 2")
        mu = xk.mean(dim=0)
        centred = xk - mu
        cov = centred.T @ centred / len(xk) + regulariser * eye
        means.append(mu)
        trils.append(torch.linalg.cholesky(cov))
        counts.append(len(xk))
    return ClassGaussians(
        mean=torch.stack(means).float(),
        scale_tril=torch.stack(trils).float(),
        shape=(c, h // downsample, w // downsample),
        counts=torch.tensor(counts),
    )


def class_seeds(
    gaussians: ClassGaussians,
    target: Tensor,
    *,
    size: tuple[int, int],
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw one seed per entry of ``target`` from its class Gaussian; upsample (bilinear) to ``size``, clamp to [0, 1].

    Normal draws are made on the CPU from ``generator`` (device-independent), then moved to the Gaussians' device.

    Args:
        gaussians: from :func:`fit_class_gaussians`.
        target: int64 ``(N,)`` classes.
        size: ``(H, W)`` of the model's input.

    Returns:
        float ``(N, C, H, W)`` in [0, 1].

    Raises:
        ValueError: bad target (class out of range) or generator.
    """
    check_generator(generator)
    if not isinstance(target, Tensor) or target.dtype != torch.int64 or target.ndim != 1:
        raise ValueError(f"target must be an int64 tensor of shape (N,), got {describe(target)}")
    if bool((target < 0).any()) or bool((target >= gaussians.num_classes).any()):
        raise ValueError(f"target holds classes outside [0, {gaussians.num_classes})")
    if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"size must be (H, W) of positive ints, got {size!r}")
    device = gaussians.mean.device
    target = target.to(device)
    z = torch.randn(len(target), gaussians.mean.shape[1], generator=generator).to(device)
    small = gaussians.mean[target] + (gaussians.scale_tril[target] @ z.unsqueeze(-1)).squeeze(-1)
    small = small.view(len(target), *gaussians.shape)
    return F.interpolate(small, size=tuple(size), mode="bilinear", align_corners=False).clamp(0.0, 1.0)


def generate(
    model: nn.Module,
    seeds: Tensor,
    target: Tensor,
    *,
    steps: int = DEFAULT_STEPS,
    eps: float = DEFAULT_EPS,
    step_size: float = DEFAULT_STEP_SIZE,
    batch_size: int | None = None,
    validate_args: bool = True,
) -> Tensor:
    """Maximise each image's ``target`` logit from ``seeds``; returns ``(N, C, H, W)`` in [0, 1].

    Each step: ``x <- x + step_size * g / ||g||_2`` with ``g = grad_x logit_target(x)`` (per example), then
    projection onto ``||x - seed||_2 <= eps`` and onto [0, 1]. Examples are independent of ``batch_size``.

    Args:
        model: returns logits ``(B, K)``; eval mode; on the seeds' device.
        seeds: float ``(N, C, H, W)`` in [0, 1] (e.g. :func:`class_seeds`).
        target: int64 ``(N,)``.
        steps, eps, step_size: see above (defaults: module docstring); ``steps=0`` returns the seeds.
        batch_size: examples per chunk (None: all at once).
        validate_args: skip the checks when False.

    Raises:
        ValueError: naming the bad argument.
    """
    if validate_args:
        check_images(seeds, "seeds")
        check_unit_range(seeds, "seeds")
        target = check_target(target, len(seeds), seeds.device)
        check_positive_int(steps, "steps", minimum=0)
        check_positive(eps, "eps")
        check_positive(step_size, "step_size")
        if batch_size is not None:
            check_positive_int(batch_size, "batch_size")
    chunk = batch_size or len(seeds)
    return torch.cat(
        [
            _generate_chunk(model, seeds[i : i + chunk], target[i : i + chunk], steps, eps, step_size)
            for i in range(0, len(seeds), chunk)
        ]
    )


def _generate_chunk(model: nn.Module, seeds: Tensor, target: Tensor, steps: int, eps: float, lr: float) -> Tensor:
    seed = seeds.detach()
    x = seed.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        with torch.enable_grad():
            score = model(x).gather(1, target.view(-1, 1)).sum()
            (grad,) = torch.autograd.grad(score, x)
        with torch.no_grad():
            x = x + lr * unit_l2(grad)
            x = (seed + project_l2(x - seed, eps)).clamp(0.0, 1.0)
    return x.detach()


@torch.no_grad()
def target_logit(model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
    """The target class's logit per example, shape ``(N,)`` (to check that generation raised it)."""
    check_images(x, "x")
    target = check_target(target, len(x), x.device)
    return model(x).gather(1, target.view(-1, 1)).squeeze(1)


__all__ = ["ClassGaussians", "class_seeds", "fit_class_gaussians", "generate", "target_logit"]
