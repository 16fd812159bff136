"""Similarity measures for feature visualisations: image similarity (SSIM, PSNR), distances in a reference encoder's
feature space, and a judge's accuracy on generated images. Per-example measures return ``(N,)``; the FID of two
feature sets is a statistic (metrics/stats/fid.py)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from metrics.functional._checks import check_images, check_positive_int, check_target

PSNR_MAX_DB = 100.0


def ssim(
    a: Tensor,
    b: Tensor,
    *,
    data_range: float = 1.0,
    kernel_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> Tensor:
    """Structural similarity (Wang et al. 2004) per example, with a Gaussian window, shape ``(N,)``.

    ``SSIM = mean over channels and valid window positions of
    ((2 mu_a mu_b + C1)(2 s_ab + C2)) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2 + C2))``,
    ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``, ``L = data_range``; local statistics are Gaussian-weighted
    (``kernel_size`` 11, ``sigma`` 1.5, population covariances) over windows that lie fully inside the image.
    This equals ``skimage.metrics.structural_similarity(a, b, data_range=1, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`` per channel, averaged over channels. Computed in float64.

    Args:
        a, b: float ``(N, C, H, W)``, same shape, H and W >= ``kernel_size``.

    Returns:
        float ``(N,)`` in [-1, 1]; 1 for identical images.

    Raises:
        ValueError: shapes differ, images smaller than the window, or a non-positive data_range/sigma.

    Example:
        >>> x = torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> ssim(x, x)
        tensor([1., 1.])
    """
    _check_pair(a, b)
    check_positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    for name, value in (("data_range", data_range), ("sigma", sigma)):
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")
    n, c, h, w = a.shape
    if h < kernel_size or w < kernel_size:
        raise ValueError(f"images of size {h}x{w} are smaller than the SSIM window (kernel_size {kernel_size})")
    dtype = torch.float32 if a.device.type == "mps" else torch.float64
    coords = torch.arange(kernel_size, dtype=dtype, device=a.device) - (kernel_size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(c, 1, kernel_size, kernel_size)
    a, b = a.to(dtype), b.to(dtype)
    stats = torch.nn.functional.conv2d(torch.cat([a, b, a * a, b * b, a * b]), window, groups=c)
    mu_a, mu_b, e_aa, e_bb, e_ab = stats.split(n)
    var_a, var_b, cov = e_aa - mu_a**2, e_bb - mu_b**2, e_ab - mu_a * mu_b
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    per_image: Tensor = ssim_map.flatten(1).mean(dim=1).to(torch.get_default_dtype())
    return per_image


def psnr(a: Tensor, b: Tensor, *, data_range: float = 1.0) -> Tensor:
    """Peak signal-to-noise ratio per example in dB, ``10 log10(L^2 / MSE)``, shape ``(N,)``.

    MSE is over all of an example's C*H*W values. Identical images (MSE = 0) give exactly ``PSNR_MAX_DB``
    (100 dB, the value at MSE = 1e-10 L^2), never inf or NaN, so per-model means stay finite.

    Args:
        a, b: float ``(N, C, H, W)``, same shape.

    Raises:
        ValueError: shapes differ or data_range is not positive.

    Example:
        >>> a = torch.zeros(2, 1, 4, 4)
        >>> psnr(a, torch.stack([a[0] + 0.1, a[1]]))
        tensor([ 20., 100.])
    """
    _check_pair(a, b)
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range!r}")
    mse = (a.double() - b.double()).pow(2).flatten(1).mean(dim=1)
    floor = data_range**2 * 10 ** (-PSNR_MAX_DB / 10)
    return (10 * torch.log10(data_range**2 / mse.clamp_min(floor))).to(torch.get_default_dtype())


@torch.no_grad()
def encoder_distance(encoder: Callable[[Tensor], Tensor], a: Tensor, b: Tensor, *, batch_size: int = 256) -> Tensor:
    """L2 distance between an encoder's features of ``a`` and ``b``, per example, shape ``(N,)``.

    Args:
        encoder: ``x (B, C, H, W) -> (B, D)``, e.g. the reference encoder of ``harness.reference``.
        a, b: float ``(N, C, H, W)``, same shape.
        batch_size: images per encoder call.

    Raises:
        ValueError: shapes differ.
    """
    _check_pair(a, b)
    check_positive_int(batch_size, "batch_size")
    diff = encode(encoder, a, batch_size=batch_size) - encode(encoder, b, batch_size=batch_size)
    distance: Tensor = diff.norm(dim=1)
    return distance


@torch.no_grad()
def encode(encoder: Callable[[Tensor], Tensor], x: Tensor, *, batch_size: int = 256) -> Tensor:
    """Features ``(N, D)`` (float32, on x's device) of images ``(N, C, H, W)``, ``batch_size`` at a time."""
    check_images(x, "x")
    check_positive_int(batch_size, "batch_size")
    return torch.cat([encoder(x[i : i + batch_size]).flatten(1).float() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def judge_accuracy(judge: nn.Module, images: Tensor, target: Tensor, *, batch_size: int = 256) -> Tensor:
    """1.0 where the judge's top-1 prediction is the intended class, else 0.0; shape ``(N,)``.

    Args:
        judge: a classifier returning logits ``(B, K)`` for images in [0, 1] (e.g. the reference encoder).
        images: float ``(N, C, H, W)``.
        target: int64 ``(N,)``, the class each image was generated for.

    Raises:
        ValueError: bad images or target.
    """
    check_images(images, "images")
    target = check_target(target, len(images), images.device)
    check_positive_int(batch_size, "batch_size")
    pred = torch.cat([judge(images[i : i + batch_size]).argmax(dim=1) for i in range(0, len(images), batch_size)])
    return (pred == target).to(torch.get_default_dtype())


def _check_pair(a: Tensor, b: Tensor) -> None:
    check_images(a, "a")
    check_images(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


__all__ = ["PSNR_MAX_DB", "encode", "encoder_distance", "judge_accuracy", "psnr", "ssim"]
