"""Representation inversion (Engstrom et al. 2019, "Adversarial robustness as a prior for learned representations").

Starting from a seed image, find ``x`` in [0, 1] whose representation matches a target image's:
``min_x ||rep(x) - rep(x_t)||_2 / ||rep(x_t)||_2`` by L2-normalised gradient steps (per example), optionally
inside an L2 ball of radius ``eps`` around the seed. Seeds, as in the seed paper: another test image (of a
different class where possible) or grey noise ``0.5 + U[-a, a]``.

Optimisation runs to a convergence rule that is the same for every model, with a cap: every ``window`` steps, an
image stops when its lowest loss so far fell by at most ``tol`` (relative) over the last ``window`` steps, or when
it reaches ``steps`` (the cap). Each image's result is its lowest-loss iterate (as the seed paper's code,
``robustness``, returns by default: a constant step keeps oscillating around the optimum), and the steps it used
are returned with it. Defaults: the paper's step (lr 1, constant, unconstrained: ``eps=None``); the cap is 2,000
steps (the paper runs a fixed 10,000); ``tol=0.01`` over ``window=100`` steps. On the two shipped gap-cnn models the
32 default targets stop after 620-810 steps on average per seed kind, 63 of 64 (PGD) and 64 of 64 (standard) before
the cap (README, "Feature visualisation"). A linearly decaying step (``final_step_size``, over the cap) is available
but off by default to stay with the paper's setting.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from metrics.featurevis._common import (
    check_pair,
    check_positive,
    check_unit_range,
    linear_schedule,
    project_l2,
    relative_distance,
    unit_l2,
)
from metrics.featurevis.representation import RepresentationFn
from metrics.functional._checks import check_generator, check_images, check_positive_int, describe

DEFAULT_STEPS = 2000
DEFAULT_STEP_SIZE = 1.0
DEFAULT_FINAL_STEP_SIZE: float | None = None
DEFAULT_WINDOW = 100
DEFAULT_TOL = 0.01
DEFAULT_NOISE_AMPLITUDE = 0.05


@dataclass(frozen=True)
class Inversion:
    """Result of :func:`invert`: ``images`` ``(N, C, H, W)`` in [0, 1], each example's lowest-loss iterate, and
    ``steps`` ``(N,)`` int64, the gradient steps each example took before it stopped (``<=`` the cap)."""

    images: Tensor
    steps: Tensor


def inversion_loss(rep_fn: RepresentationFn, x: Tensor, x_target: Tensor) -> Tensor:
    """Relative representation distance ``||rep(x) - rep(x_t)|| / ||rep(x_t)||`` per example, shape ``(N,)``.

    Args:
        rep_fn: ``x (N, C, H, W) -> (N, D)`` (e.g. from :func:`representation_fn`).
        x, x_target: float ``(N, C, H, W)``.

    Returns:
        float ``(N,)``, >= 0 (0 when the representations coincide). No gradient is tracked.

    Raises:
        ValueError: if x and x_target differ in shape or are not finite images.
    """
    check_pair(x, x_target, "x", "x_target")
    with torch.no_grad():
        return relative_distance(rep_fn(x), rep_fn(x_target))


def invert(
    rep_fn: RepresentationFn,
    x_target: Tensor,
    x_seed: Tensor,
    *,
    steps: int = DEFAULT_STEPS,
    step_size: float = DEFAULT_STEP_SIZE,
    final_step_size: float | None = DEFAULT_FINAL_STEP_SIZE,
    eps: float | None = None,
    window: int = DEFAULT_WINDOW,
    tol: float = DEFAULT_TOL,
    batch_size: int | None = None,
    validate_args: bool = True,
) -> Inversion:
    """Invert the representation of ``x_target`` starting from ``x_seed``, each example until it converges.

    Each step: ``g = grad_x L(x)``, ``x <- x - lr_s * g / ||g||_2`` (per example), then projection onto the L2
    ball ``||x - x_seed||_2 <= eps`` (if ``eps`` is given) and onto [0, 1]. ``lr_s`` goes linearly from
    ``step_size`` (first step) to ``final_step_size`` (step ``steps``); ``final_step_size=None`` keeps it constant.
    ``L`` is :func:`inversion_loss`. With ``B(t)`` the lowest loss of iterates ``0..t`` (iterate 0 is the seed), an
    example stops at ``t = window, 2 window, ...`` when ``B(t - window) - B(t) <= tol * B(t - window)``, and at
    ``t = steps`` in any case; its result is the iterate with loss ``B(t)``. ``tol=0`` stops only at the cap
    (or on a loss that does not move at all); ``steps=0`` returns the seeds. Examples are independent: the result
    does not depend on ``batch_size`` (up to a float32 model's batch-dependent rounding).

    Args:
        rep_fn: differentiable ``x (N, C, H, W) -> (N, D)``.
        x_target: float ``(N, C, H, W)``, the images whose representation is matched.
        x_seed: float ``(N, C, H, W)`` in [0, 1], the starting points (see :func:`other_image_seeds`,
            :func:`noise_seeds`).
        steps: the cap on gradient steps per example (>= 0).
        step_size, final_step_size: L2 length of the first and last step (> 0).
        eps: radius of the L2 ball around the seed, or None (unconstrained except for [0, 1]).
        window: steps between two convergence checks (>= 1).
        tol: relative improvement of the lowest loss over a window below which an example stops, in [0, 1).
        batch_size: examples per chunk (None: all at once).
        validate_args: skip the argument checks when False (inner loops).

    Returns:
        an :class:`Inversion`: ``images`` ``(N, C, H, W)`` and ``steps`` ``(N,)``.

    Raises:
        ValueError: naming the bad argument (shapes, non-positive sizes, seeds outside [0, 1]).
    """
    if validate_args:
        check_pair(x_seed, x_target, "x_seed", "x_target")
        check_unit_range(x_seed, "x_seed")
        check_positive_int(steps, "steps", minimum=0)
        check_positive(step_size, "step_size")
        if final_step_size is not None:
            check_positive(final_step_size, "final_step_size")
        if eps is not None:
            check_positive(eps, "eps")
        check_positive_int(window, "window")
        if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 <= tol < 1:
            raise ValueError(f"tol must be a number in [0, 1), got {tol!r}")
        if batch_size is not None:
            check_positive_int(batch_size, "batch_size")
    sizes = linear_schedule(steps, step_size, final_step_size)
    chunk = batch_size or len(x_target)
    parts = [
        _invert_chunk(rep_fn, x_target[i : i + chunk], x_seed[i : i + chunk], sizes, eps, window, float(tol))
        for i in range(0, len(x_target), chunk)
    ]
    return Inversion(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))


def _invert_chunk(
    rep_fn: RepresentationFn,
    x_target: Tensor,
    x_seed: Tensor,
    sizes: list[float],
    eps: float | None,
    window: int,
    tol: float,
) -> tuple[Tensor, Tensor]:
    """``(lowest-loss iterates (n, C, H, W), steps taken (n,))``; only the examples still running are computed."""
    with torch.no_grad():
        rep_target = rep_fn(x_target).detach()
    seed = x_seed.detach()
    n, device = len(seed), seed.device
    x, best_x = seed.clone(), seed.clone()
    best = torch.full((n,), float("inf"), dtype=seed.dtype, device=device)
    reference = torch.full((n,), float("inf"), dtype=seed.dtype, device=device)  # B(t - window) of the current window
    used = torch.zeros(n, dtype=torch.int64, device=device)
    active = torch.arange(n, device=device)
    cap = len(sizes)
    for t in range(cap + 1):
        xa = x[active].requires_grad_(True)
        with torch.enable_grad():
            loss = relative_distance(rep_fn(xa), rep_target[active])
            grad = torch.autograd.grad(loss.sum(), xa)[0] if t < cap else None
        with torch.no_grad():
            loss = loss.detach().to(best.dtype)
            better = loss < best[active]
            best[active[better]] = loss[better]
            best_x[active[better]] = xa.detach()[better]
            used[active] = t
            if t == 0:
                reference[active] = best[active]
            if grad is None:
                break
            keep = torch.ones(len(active), dtype=torch.bool, device=device)
            if t > 0 and t % window == 0:
                now, before = best[active], reference[active]
                keep = before - now > tol * before
                reference[active] = now
            step = xa.detach() - sizes[t] * unit_l2(grad)
            if eps is not None:
                step = seed[active] + project_l2(step - seed[active], eps)
            x[active] = step.clamp(0.0, 1.0)
            active = active[keep]
            if len(active) == 0:
                break
    return best_x, used


def other_image_seeds(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Seed each image with another image of the batch, of a different class where the batch allows.

    Example ``i`` gets image ``j = (i + k) mod N`` for the smallest ``k`` in 1..N-1 with ``y[j] != y[i]``
    (``k = 1`` when every image has the same class): deterministic and independent of any random state.

    Args:
        x: float ``(N, C, H, W)``, N >= 2.
        y: int64 ``(N,)`` labels.

    Returns:
        ``(seeds (N, C, H, W), index (N,))`` with ``seeds = x[index]``.

    Raises:
        ValueError: if N < 2 or y does not match x.

    Example:
        >>> x = torch.arange(4.0).view(4, 1, 1, 1)
        >>> other_image_seeds(x, torch.tensor([0, 0, 1, 2]))[1]
        tensor([2, 2, 3, 0])
    """
    check_images(x, "x")
    if len(x) < 2:
        raise ValueError(f"x must hold at least 2 images to seed each with another one, got N = {len(x)}")
    if not isinstance(y, Tensor) or tuple(y.shape) != (len(x),):
        raise ValueError(f"y must be a tensor of shape ({len(x)},), got {describe(y)}")
    n = len(x)
    y = y.to(x.device)
    index = torch.arange(n, device=x.device)
    chosen = (index + 1) % n
    found = torch.zeros(n, dtype=torch.bool, device=x.device)
    for k in range(1, n):
        candidate = (index + k) % n
        new = ~found & (y[candidate] != y)
        chosen = torch.where(new, candidate, chosen)
        found |= new
        if bool(found.all()):
            break
    return x[chosen], chosen


def noise_seeds(
    shape: tuple[int, ...] | torch.Size,
    *,
    amplitude: float = DEFAULT_NOISE_AMPLITUDE,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Grey-noise seeds ``0.5 + U[-amplitude, amplitude)``, shape ``shape`` (e.g. ``(N, C, H, W)``).

    Drawn on the CPU from ``generator`` (so results do not depend on the device), then moved to ``device``.

    Raises:
        ValueError: if amplitude is not in [0, 0.5] or generator is not a torch.Generator.
    """
    check_generator(generator)
    if not isinstance(amplitude, int | float) or not 0.0 <= amplitude <= 0.5:
        raise ValueError(f"amplitude must be a number in [0, 0.5], got {amplitude!r}")
    u = torch.rand(tuple(shape), generator=generator)
    return (0.5 + amplitude * (2.0 * u - 1.0)).to(device)
