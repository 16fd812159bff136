"""Explanation infidelity (Yeh et al., NeurIPS 2019): the paper's Gaussian estimator (:func:`infidelity_gaussian`,
as captum's ``infidelity``) and Quantus 0.6.0's cumulative-patch variant (:func:`infidelity`)."""

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
from metrics.functional._perturb import chunks, curves, model_scores, rand, randn, resolve_baseline

_DRAW_CHUNK = 64  # examples per draw of perturbations: fixed, so results do not depend on batch_size


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
            raise ValueError(
                f"noise must be a float tensor of shape ({n}, n_samples, {n_patches}), got {describe(noise)}"
            )
        if not bool(torch.isfinite(noise).all()):
            raise ValueError("noise contains NaN or infinite values")
        reps = noise.shape[1]
        base = noise.to(device=x.device, dtype=x.dtype)[:, :, patch_id].reshape(n * reps, 1, h, w).expand(-1, c, h, w)
    else:
        reps = 1
        base = resolve_baseline(baseline, x, generator)
    x_index = torch.arange(n, device=x.device).repeat_interleave(reps)
    counts = torch.arange(n_patches + 1, device=x.device)
    curve = curves(
        model,
        x,
        base,
        patch_id[None],
        counts,
        target,
        mode="deletion",
        softmax=softmax,
        batch_size=batch_size,
        x_index=x_index,
        rank_index=torch.zeros_like(x_index),
    )
    drops = curve[:, :1] - curve[:, 1:]
    contrib = (a[x_index].double() * (x[x_index] - base).double()).sum(dim=1)
    per_patch = torch.zeros(n * reps, n_patches, dtype=torch.float64, device=x.device)
    per_patch.index_add_(1, patch_id.flatten(), contrib.flatten(1))
    predicted = per_patch.cumsum(dim=1)
    loss = ((predicted - drops.double()) ** 2).mean(dim=1)
    return loss.reshape(n, reps).mean(dim=1).to(x.dtype)


def _check_sigma(sigma: object) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not 0 < sigma < float("inf"):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    return float(sigma)


def infidelity_gaussian(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    *,
    sigma: float = 0.2,
    n_samples: int = 100,
    optimal_scaling: bool = True,
    perturbations: Tensor | None = None,
    softmax: bool = False,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Infidelity with Gaussian perturbations, Yeh et al.'s estimator (lower = more faithful):
    ``INFD_i = mean_s ( beta_i a_i . I_s - (f(x_i) - f(x_i - I_s))[t_i] )^2`` with ``I_s ~ N(0, sigma^2)`` per
    element, i.i.d. over the ``n_samples`` samples s.

    ``f`` is the target logit (``softmax=False``, as in the paper's code and captum) or its softmax probability.
    ``optimal_scaling=True`` (the paper's evaluation: explanations are compared after their best rescaling) uses
    ``beta_i = sum_s (a . I_s) D_s / sum_s (a . I_s)^2`` (D_s the output drop), the beta minimising the estimate,
    so the score does not depend on the attributions' scale; ``beta = 0`` where ``a . I_s = 0`` for every s
    (e.g. all-zero attributions: every beta gives ``mean_s D_s^2``). ``optimal_scaling=False`` uses beta = 1.
    Equals ``captum.metrics.infidelity(model, perturb_func, x, attributions, target=target,
    n_perturb_samples=n_samples, normalize=optimal_scaling)`` when ``perturb_func`` returns these ``I`` and
    ``x - I``. Perturbed inputs are not clipped to the data range (Yeh et al.'s code clips ``x - I`` to [0, 1]).
    For the gradient of a linear score ``f(x) = w . x`` (``a = w``) every term is 0; for ``a = 0`` the expectation
    is ``sigma^2 |w|^2``. Attributions ``(N, 1, H, W)`` or ``(N, H, W)`` are broadcast over x's channels. The
    scores (in the model's dtype), ``a . I`` and the estimate are kept in float64.

    Args:
        model: returns logits ``(B, K)``; on x's device, in eval mode.
        x: float ``(N, C, H, W)``.
        attributions: ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``.
        target: int64 ``(N,)``.
        sigma: standard deviation of the perturbations (0.2 as in Yeh et al.'s code, for inputs in [0, 1]).
        n_samples: perturbations per example (ignored when ``perturbations`` is given).
        optimal_scaling: rescale the attributions by the optimal beta, see above.
        perturbations: explicit ``I`` ``(N, S, C, H, W)`` instead of drawing (``sigma`` then unused).
        softmax: score = softmax probability instead of the logit.
        generator: draws ``sigma * torch.randn((n, n_samples, C, H, W))`` for consecutive chunks of 64 examples
            (the same draws whatever ``batch_size``); ``None`` = torch's global RNG.
        batch_size: images per forward pass.

    Returns:
        ``(N,)`` >= 0, dtype of x.

    Raises:
        ValueError: bad argument (named), or the model returns NaN/inf logits.
    """
    check_images(x)
    n, c, h, w = x.shape
    target = check_target(target, n, x.device)
    check_positive_int(batch_size, "batch_size")
    check_generator(generator)
    a = channel_attributions(attributions, x.shape).to(x.device)
    if perturbations is None:
        check_positive_int(n_samples, "n_samples")
        sigma = _check_sigma(sigma)
    else:
        if (
            not isinstance(perturbations, Tensor)
            or not perturbations.is_floating_point()
            or perturbations.ndim != 5
            or perturbations.shape[0] != n
            or perturbations.shape[1] < 1
            or tuple(perturbations.shape[2:]) != (c, h, w)
        ):
            raise ValueError(
                f"perturbations must be a float tensor of shape ({n}, n_samples, {c}, {h}, {w}), "
                f"got {describe(perturbations)}"
            )
        if not bool(torch.isfinite(perturbations).all()):
            raise ValueError("perturbations contains NaN or infinite values")
        n_samples = perturbations.shape[1]
    batches = ((x[i:j], target[i:j]) for i, j in chunks(n, batch_size))
    scores = model_scores(model, batches, softmax=softmax, dtype=torch.float64).to(x.device)
    predicted = torch.empty(n, n_samples, dtype=torch.float64, device=x.device)  # a . I_s
    drop = torch.empty(n, n_samples, dtype=torch.float64, device=x.device)  # f(x) - f(x - I_s)
    for start, stop in chunks(n, _DRAW_CHUNK):
        m = stop - start
        if perturbations is None:
            noise = sigma * randn((m, n_samples, c, h, w), generator, x.device, x.dtype)
        else:
            noise = perturbations[start:stop].to(device=x.device, dtype=x.dtype)
        predicted[start:stop] = (a[start:stop, None].double() * noise.double()).sum(dim=(2, 3, 4))
        perturbed = (x[start:stop, None] - noise).reshape(m * n_samples, c, h, w)
        t = target[start:stop].repeat_interleave(n_samples)
        batches = ((perturbed[i:j], t[i:j]) for i, j in chunks(m * n_samples, batch_size))
        moved = model_scores(model, batches, softmax=softmax, dtype=torch.float64).to(x.device)
        drop[start:stop] = scores[start:stop, None] - moved.reshape(m, n_samples)
    beta: Tensor | float
    if optimal_scaling:
        norm = predicted.square().sum(dim=1, keepdim=True)
        beta = torch.where(norm > 0, (predicted * drop).sum(dim=1, keepdim=True) / norm.clamp(min=1e-300), 0.0)
    else:
        beta = 1.0
    return (beta * predicted - drop).square().mean(dim=1).to(x.dtype)
