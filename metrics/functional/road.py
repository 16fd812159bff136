"""ROAD (Rong et al., ICML 2022): removed pixels are filled by noisy linear imputation from their neighbours, as
Quantus 0.6.0's ``noisy_linear_imputation`` and ``ROAD`` define it, solved for all images at once.

Each removed pixel must equal the weighted mean of its 8 neighbours inside the image (weight 1/6 for the 4
direct, 1/12 for the 4 diagonal neighbours, divided by the weights of the neighbours that exist: at borders and
corners the mean is over fewer neighbours). Known neighbours enter with their values, removed ones as unknowns:
a sparse, symmetric, positive-definite system per image and channel, ``(D - W_RR) v = W_RK x_K`` (``D`` the
in-image neighbour weights), solved here by conjugate gradients on the 3x3 stencil.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metrics.functional._checks import (
    check_choice,
    check_generator,
    check_images,
    check_positive_int,
    check_target,
    describe,
    pixel_map,
)
from metrics.functional._perturb import chunks, feature_ranks, randn

DEFAULT_NOISE_STD = 0.01  # Quantus's ROAD ``noise`` and the ROAD authors' default
DEFAULT_RTOL = 1e-6  # float32 (and lower precision) images
DEFAULT_RTOL_FLOAT64 = 1e-10
# Images x channels solved together: small enough for the CPU caches, large on accelerators (the solution of
# each system does not depend on the chunk).
_SOLVE_CHUNK = {"cpu": 256}
_SOLVE_CHUNK_DEFAULT = 8192


def _neighbour_sum(v: Tensor) -> Tensor:
    """``sum_j w_ij v_j`` over the 8 neighbours inside the image, ``(B, 1, H, W)``: the stencil
    ``[[1, 2, 1], [2, 0, 2], [1, 2, 1]] / 12`` (separable ``[1, 2, 1]`` in each direction, minus the centre)."""
    p = F.pad(v, (1, 1, 1, 1))
    r = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    r = r[..., :-2, :] + 2 * r[..., 1:-1, :] + r[..., 2:, :]
    return (r - 4 * v) / 12


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).sum(dim=(1, 2, 3))


def _conjugate_gradients(b: Tensor, removed: Tensor, degree: Tensor, rtol: float, max_iter: int) -> Tensor:
    """Solve ``removed * (degree * v - S(v)) = b`` for v supported on ``removed`` (``(B, 1, H, W)`` each), every
    system to ``||r|| <= rtol * ||b||``; a system stops at its own tolerance (converged systems are dropped from
    the batch), so its solution does not depend on the others. ``b = 0`` (e.g. every pixel removed) gives 0."""
    out = torch.zeros_like(b)
    index = torch.arange(b.shape[0], device=b.device)
    r, mask = b, removed.to(b.dtype)
    sol, p = torch.zeros_like(b), b
    rr = _dot(r, r)
    threshold = rtol**2 * rr
    for iteration in range(max_iter + 1):
        active = rr > threshold
        if not bool(active.all()):
            done = ~active
            out[index[done]] = sol[done]
            keep = active.nonzero().squeeze(1)
            if keep.numel() == 0:
                return out
            index, sol, r, p, mask = index[keep], sol[keep], r[keep], p[keep], mask[keep]
            rr, threshold = rr[keep], threshold[keep]
        if iteration == max_iter:
            break
        ap = mask * (degree * p - _neighbour_sum(p))
        alpha = (rr / _dot(p, ap))[:, None, None, None]
        sol = sol + alpha * p
        r = r - alpha * ap
        rr_new = _dot(r, r)
        p = r + (rr_new / rr)[:, None, None, None] * p
        rr = rr_new
    raise ValueError(
        f"the imputation did not reach rtol={rtol} in {max_iter} conjugate-gradient iterations; "
        "use a larger rtol (float32 images: >= 1e-7) or float64 images"
    )


def _rtol(rtol: float | None, dtype: torch.dtype) -> float:
    if rtol is None:
        return DEFAULT_RTOL_FLOAT64 if dtype == torch.float64 else DEFAULT_RTOL
    return _check_float(rtol, "rtol", 0.0, 1.0, low_open=True)


def linear_imputation(x: Tensor, removed: Tensor, *, rtol: float | None = None) -> Tensor:
    """x ``(N, C, H, W)`` with the ``removed`` pixels (bool, broadcastable to x) replaced by the linear
    imputation from their neighbours (no noise, no argument checks: see :func:`noisy_linear_imputation`)."""
    n, c, h, w = x.shape
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    rtol = _rtol(rtol, dtype)
    v = x.to(dtype).reshape(n * c, 1, h, w)
    m = removed.expand(n, c, h, w).reshape(n * c, 1, h, w)
    degree = _neighbour_sum(torch.ones(1, 1, h, w, dtype=dtype, device=x.device))
    out = v.clone()
    for start, stop in chunks(n * c, _SOLVE_CHUNK.get(x.device.type, _SOLVE_CHUNK_DEFAULT)):
        vs, ms = v[start:stop], m[start:stop]
        b = torch.where(ms, _neighbour_sum(torch.where(ms, 0.0, vs)), 0.0)
        sol = _conjugate_gradients(b, ms, degree, rtol, max_iter=h * w)
        out[start:stop] = torch.where(ms, sol, vs)
    return out.reshape(n, c, h, w).to(x.dtype)


def _check_removed(removed: object, x: Tensor) -> Tensor:
    n, c, h, w = x.shape
    if (
        not isinstance(removed, Tensor)
        or removed.dtype != torch.bool
        or removed.ndim != 4
        or removed.shape[0] != n
        or removed.shape[1] not in (1, c)
        or tuple(removed.shape[2:]) != (h, w)
    ):
        raise ValueError(
            f"removed must be a bool tensor of shape ({n}, 1, {h}, {w}) or ({n}, {c}, {h}, {w}), "
            f"got {describe(removed)}"
        )
    return removed.to(x.device)


def _check_float(value: object, name: str, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got {value!r}")
    return float(value)


def _check_noise(noise: object, shape: tuple[int, ...], name: str = "noise") -> Tensor:
    if not isinstance(noise, Tensor) or not noise.is_floating_point() or tuple(noise.shape) != shape:
        raise ValueError(f"{name} must be a float tensor of shape {shape}, got {describe(noise)}")
    if not bool(torch.isfinite(noise).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return noise


def road_noise(
    x: Tensor, noise_std: float, noise: Tensor | None, generator: torch.Generator | None, shape: tuple[int, ...]
) -> Tensor:
    """``noise_std * z`` with z the explicit standard-normal ``noise`` of ``shape`` or drawn from ``generator``
    (nothing drawn when ``noise_std == 0``); on x's device and dtype."""
    _check_float(noise_std, "noise_std", 0.0, math.inf)
    if noise is not None:
        z = _check_noise(noise, shape).to(device=x.device, dtype=x.dtype)
    elif noise_std == 0:
        return torch.zeros(shape, dtype=x.dtype, device=x.device)
    else:
        z = randn(shape, generator, x.device, x.dtype)
    return noise_std * z


def noisy_linear_imputation(
    x: Tensor,
    removed: Tensor,
    *,
    noise_std: float = DEFAULT_NOISE_STD,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    rtol: float | None = None,
) -> Tensor:
    """ROAD's fill: each removed pixel becomes the weighted mean of its 8 in-image neighbours (1/6 direct, 1/12
    diagonal, renormalised at borders), jointly for all removed pixels, plus ``noise_std * z``, z ~ N(0, 1).

    Equals Quantus 0.6.0's ``noisy_linear_imputation(arr, indices, noise=noise_std)`` per image (which solves the
    same system directly with ``spsolve``) when z holds its ``np.random.randn`` draws. Solved by conjugate
    gradients for all images and channels at once, each system until its residual ``||r|| <= rtol * ||b||``
    (``b`` the known neighbours' weighted sum). Computed in x's dtype (float32 or float64; others in float32);
    the default rtol is 1e-6 for float32, which leaves Fashion-MNIST imputations within ~1e-5 of the direct
    solution (far below the default noise 0.01), and 1e-10 for float64 (within ~1e-9). A channel whose pixels
    are all removed has no known neighbour: every constant solves the system and its minimum-norm solution 0 is
    used (Quantus's ``spsolve`` fails there). Values are not clipped to the input range (as in Quantus).

    Args:
        x: float ``(N, C, H, W)``.
        removed: bool ``(N, 1, H, W)`` (the same pixels in every channel) or ``(N, C, H, W)``: pixels to impute.
        noise_std: standard deviation of the added Gaussian noise (0 = plain linear imputation).
        noise: explicit standard-normal draws ``(N, C, H, W)`` (only their removed pixels are used) instead of
            drawing from ``generator``.
        generator: draws z, ``torch.randn((N, C, H, W))``; ``None`` = torch's global RNG.
        rtol: relative residual at which each system's conjugate gradients stop; ``None`` = by dtype, see above.

    Returns:
        ``(N, C, H, W)``, dtype of x: x outside ``removed``.

    Raises:
        ValueError: bad argument (named), or the solver does not reach ``rtol`` in ``H * W`` iterations.

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]])
        >>> removed = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
        >>> removed[0, 0, 1, 1] = True
        >>> noisy_linear_imputation(x, removed, noise_std=0.0)[0, 0, 1, 1]
        tensor(5.)
    """
    check_images(x)
    removed = _check_removed(removed, x)
    check_generator(generator)
    _rtol(rtol, x.dtype)
    z = road_noise(x, noise_std, noise, generator, tuple(x.shape))
    filled = linear_imputation(x, removed, rtol=rtol)
    return torch.where(removed, filled + z, x)


def single_pixel_imputation(
    x: Tensor,
    *,
    noise_std: float = DEFAULT_NOISE_STD,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """For every pixel, the value ROAD's fill gives it when that pixel alone is removed, ``(N, C, H, W)``.

    With one removed pixel every neighbour is known, and :func:`noisy_linear_imputation`'s system has the closed
    form ``v_ij = sum_k w_k x_k / sum_k w_k + noise_std * z_ij`` over the pixel's in-image 8 neighbours k (weights
    1/6 direct, 1/12 diagonal): one stencil pass, no solve. Replacing pixel (i, j) of x by this value gives
    exactly ``noisy_linear_imputation(x, removed={(i, j)}, noise=z)`` (up to that solver's tolerance); the images of
    a single-pixel occlusion under ROAD's fill.

    Args:
        x: float ``(N, C, H, W)``, H and W at least 2.
        noise_std: standard deviation of the added Gaussian noise (0 = plain linear imputation).
        noise: explicit standard-normal draws ``z`` ``(N, C, H, W)`` instead of drawing from ``generator``.
        generator: draws z, ``torch.randn((N, C, H, W))``; ``None`` = torch's global RNG.

    Returns:
        ``(N, C, H, W)``, dtype of x.

    Raises:
        ValueError: bad argument (named).

    Example:
        >>> x = torch.tensor([[[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]])
        >>> single_pixel_imputation(x, noise_std=0.0)[0, 0, 1, 1]
        tensor(5.)
    """
    check_images(x)
    n, c, h, w = x.shape
    if h < 2 or w < 2:
        raise ValueError(f"x must be at least 2x2 pixels (a pixel needs a neighbour), got {h}x{w}")
    check_generator(generator)
    z = road_noise(x, noise_std, noise, generator, tuple(x.shape))
    dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    v = x.to(dtype).reshape(n * c, 1, h, w)
    degree = _neighbour_sum(torch.ones(1, 1, h, w, dtype=dtype, device=x.device))
    return (_neighbour_sum(v) / degree).reshape(n, c, h, w).to(x.dtype) + z


def _removal_counts(percentages: Sequence[float], n_pixels: int) -> list[int]:
    if isinstance(percentages, str | Tensor) or not isinstance(percentages, Sequence) or len(percentages) == 0:
        raise ValueError(f"percentages must be a non-empty sequence of numbers in [0, 100], got {percentages!r}")
    for p in percentages:
        _check_float(p, "percentages", 0.0, 100.0)
    return [int(n_pixels * p / 100) for p in percentages]  # Quantus: int(a_size * p / 100)


def road_curve(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    *,
    percentages: Sequence[float] = tuple(range(1, 100, 2)),
    order: Literal["morf", "lerf"] = "morf",
    noise_std: float = DEFAULT_NOISE_STD,
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    rtol: float | None = None,
    batch_size: int = 256,
) -> Tensor:
    """ROAD curve (Quantus 0.6.0 ``ROAD``, per example): is the model still right after the top ``p`` percent
    of pixels are removed and filled by :func:`noisy_linear_imputation`?

    ``curve[i, j] = 1.0`` if ``argmax model(x_ij) == target_i`` else 0.0, where ``x_ij`` has the first
    ``int(H * W * p_j / 100)`` pixels in the order imputed with fresh noise ``noise_std * noise[i, j]``. Quantus
    returns the mean of ``curve`` over examples per percentage (``{p_j: mean_i curve[i, j]}``). Pixels carry all
    channels and are ranked by their channel-summed attribution: "morf" most relevant first (Quantus's only
    order; ties by lower row-major index, where Quantus's ``np.argsort`` leaves ties unspecified), "lerf" least
    relevant first (the paper's second order). Quantus ranks ``C * H * W`` elements and thus needs C = 1. For
    the probability of the target along such a curve, see ``perturbation_curve(..., fill="road")``.

    Args:
        model: returns logits ``(B, K)``; on x's device, in eval mode.
        x: float ``(N, C, H, W)``.
        attributions: ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``; channels are summed.
        target: int64 ``(N,)``.
        percentages: P percentages of pixels removed, each in [0, 100] (100 removes every pixel: see
            :func:`noisy_linear_imputation`).
        order: see above.
        noise_std, rtol: as in :func:`noisy_linear_imputation`.
        noise: explicit standard-normal draws ``(N, P, C, H, W)`` instead of drawing from ``generator``.
        generator: draws the noise, ``torch.randn((N, P, C, H, W))``.
        batch_size: images per imputation and forward pass.

    Returns:
        ``(N, P)`` float in {0, 1}, dtype of x.

    Raises:
        ValueError: bad argument (named), or the model returns NaN/inf logits.
    """
    check_images(x)
    n, c, h, w = x.shape
    target = check_target(target, n, x.device)
    check_choice(order, "order", ("morf", "lerf"))
    check_positive_int(batch_size, "batch_size")
    check_generator(generator)
    _rtol(rtol, x.dtype)
    counts = torch.tensor(_removal_counts(percentages, h * w), device=x.device)
    n_steps = counts.shape[0]
    ranks = feature_ranks(pixel_map(attributions, x.shape).to(x.device).reshape(n, h * w), order, None)
    z = road_noise(x, noise_std, noise, generator, (n, n_steps, c, h, w)).reshape(n * n_steps, c, h, w)
    out, finite = [], []
    with torch.inference_mode():
        for start, stop in chunks(n * n_steps, batch_size):
            i = torch.arange(start, stop, device=x.device) // n_steps
            k = torch.arange(start, stop, device=x.device) % n_steps
            removed = (ranks[i] < counts[k][:, None]).reshape(-1, 1, h, w)
            images = torch.where(removed, linear_imputation(x[i], removed, rtol=rtol) + z[start:stop], x[i])
            logits = model(images)
            if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != images.shape[0]:
                raise ValueError(
                    f"model must return logits of shape (B, num_classes) for a batch of "
                    f"{images.shape[0]} images, got {describe(logits)}"
                )
            if bool((target >= logits.shape[1]).any()):
                raise ValueError(f"target holds class indices >= the model's {logits.shape[1]} outputs")
            finite.append(torch.isfinite(logits).all())
            out.append(logits.argmax(dim=1) == target[i])
    if not bool(torch.stack(finite).all()):
        raise ValueError("model returned NaN or infinite logits; the metric is undefined for such inputs")
    return torch.cat(out).reshape(n, n_steps).to(x.dtype)
