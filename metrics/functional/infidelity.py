"""Explanation infidelity (Yeh et al., NeurIPS 2019) as Quantus 0.6.0's ``Infidelity`` implements it."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from metrics.functional._checks import (
    channel_attributions,
    check_generator,
    check_images,
    check_positive_int,
    check_target,
    describe,
)
from metrics.functional._perturb import curves, rand, resolve_baseline


def infidelity(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    *,
    patch_size: int = 4,
    n_samples: int = 10,
    baseline: Literal["uniform", "black", "mean"] | Tensor = "black",
    noise: Tensor | None = None,
    softmax: bool = False,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Mean squared gap between the attribution-predicted and the actual change of the target score under
    cumulative patch perturbations (lower = more faithful).

    The image is cut into P non-overlapping ``patch_size`` patches, visited row-major. For repetition s and
    k = 1..P, ``x_k`` has patches 1..k replaced by the baseline ``b_s`` and ``I_k = x - x_k``:
    ``INFD_i = mean_s mean_k ( a_i . I_k - (f(x_i) - f(x_k))[t_i] )^2``.
    This is Quantus's perturbation (its default ``perturb_func`` applied cumulatively, patch after patch), loss
    (``mse``, not normalised) and score (target logit, ``softmax=False``), with no attribution normalisation
    (Quantus: ``normalise=False``), rather than the Gaussian-noise estimator of the paper.

    Baselines: "black" (default, 0), "mean" (each image's per-channel mean) or a tensor broadcastable to x are
    deterministic, so the ``n_samples`` repetitions coincide and are computed once. "uniform" fills each patch
    with one value ~ U[0, 1) per (example, repetition, patch), as Quantus's batched "uniform" baseline does;
    ``noise`` ``(N, n_samples, P)`` gives those values explicitly. Attributions ``(N, 1, H, W)`` or ``(N, H, W)``
    are broadcast over x's channels (``a . I`` is an element-wise sum).

    Args:
        model: returns logits ``(B, K)``; on x's device, in eval mode.
        x: float ``(N, C, H, W)``; ``patch_size`` must divide H and W.
        attributions: ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``.
        target: int64 ``(N,)``.
        patch_size, n_samples, baseline, noise, softmax: see above.
        generator: draws the "uniform" patch values.
        batch_size: images per forward pass.

    Returns:
        ``(N,)`` >= 0.

    Raises:
        ValueError: bad argument (named), or the model returns NaN/inf logits.
    """
    check_images(x)
    n, c, h, w = x.shape
    target = check_target(target, n, x.device)
    check_positive_int(patch_size, "patch_size")
    check_positive_int(n_samples, "n_samples")
    check_positive_int(batch_size, "batch_size")
    check_generator(generator)
    if h % patch_size or w % patch_size:
        raise ValueError(f"patch_size {patch_size} does not divide the image size {h}x{w}")
    a = channel_attributions(attributions, x.shape).to(x.device)
    hp, wp = h // patch_size, w // patch_size
    n_patches = hp * wp
    patch_id = torch.arange(n_patches, device=x.device).reshape(hp, wp)
    patch_id = patch_id.repeat_interleave(patch_size, 0).repeat_interleave(patch_size, 1)
    if noise is None and isinstance(baseline, str) and baseline == "uniform":
        noise = rand((n, n_samples, n_patches), generator, x.device, x.dtype)
    if noise is not None:
        if not isinstance(noise, Tensor) or noise.ndim != 3 or noise.shape[0] != n or noise.shape[2] != n_patches:
            raise ValueError(f"noise must be a float tensor of shape ({n}, n_samples, {n_patches}), "
                             f"got {describe(noise)}")  # fmt: skip
        if not bool(torch.isfinite(noise).all()):
            raise ValueError("noise contains NaN or infinite values")
        reps = noise.shape[1]
        base = noise.to(device=x.device, dtype=x.dtype)[:, :, patch_id].reshape(n * reps, 1, h, w).expand(-1, c, h, w)
    else:
        reps = 1
        base = resolve_baseline(baseline, x, generator)
    x_index = torch.arange(n, device=x.device).repeat_interleave(reps)
    counts = torch.arange(n_patches + 1, device=x.device)
    curve = curves(model, x, base, patch_id[None], counts, target, mode="deletion", softmax=softmax,
                   batch_size=batch_size, x_index=x_index, rank_index=torch.zeros_like(x_index))  # fmt: skip
    drops = curve[:, :1] - curve[:, 1:]
    contrib = (a[x_index].double() * (x[x_index] - base).double()).sum(dim=1)
    per_patch = torch.zeros(n * reps, n_patches, dtype=torch.float64, device=x.device)
    per_patch.index_add_(1, patch_id.flatten(), contrib.flatten(1))
    predicted = per_patch.cumsum(dim=1)
    loss = ((predicted - drops.double()) ** 2).mean(dim=1)
    return loss.reshape(n, reps).mean(dim=1).to(x.dtype)
