"""Explanation robustness: Max-Sensitivity (Yeh et al., NeurIPS 2019) as Quantus's ``MaxSensitivity``."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from metrics.functional._checks import (
    check_choice,
    check_generator,
    check_images,
    check_positive_int,
    check_target,
    describe,
)
from metrics.functional._explain import ExplainFn, explain_in_chunks
from metrics.functional._perturb import rand


def _norm(t: Tensor, norm: str) -> Tensor:
    return t.abs().amax(dim=1) if norm == "linf" else torch.linalg.vector_norm(t, dim=1)


def max_sensitivity(
    model: nn.Module,
    x: Tensor,
    target: Tensor,
    explain_fn: ExplainFn,
    *,
    radius: float = 0.2,
    n_samples: int = 200,
    norm: Literal["fro", "linf"] = "fro",
    noise: Tensor | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Largest relative change of the explanation under small uniform input noise (lower = more robust).

    ``MS_i = max_{j <= n_samples} ||a(x_i) - a(x_i + u_j)|| / ||a(x_i)||`` with ``u_j ~ U[-radius, radius]`` per
    element (the L-inf ball; not clipped to [0, 1]) and ``a = explain_fn(model, ., target)``, flattened over all
    its elements. Quantus's defaults: radius (``lower_bound``) 0.2, 200 samples, Frobenius (L2) norms, raw
    attributions (``abs=False``, ``normalise=False``).

    If ``a(x_i)`` is all zero the ratio is undefined: ``MS_i = 0.0`` if every perturbed explanation is zero too,
    else ``inf``.

    Args:
        model: the model explained; on x's device.
        x: float ``(N, C, H, W)``.
        target: int64 ``(N,)``.
        explain_fn: ``(model, x_batch, target_batch) -> attributions (B, ...)``; called on chunks of at most
            ``batch_size`` perturbed images.
        radius: half-width of the uniform noise, > 0.
        n_samples: number of noise draws.
        norm: "fro" (L2 over all elements) or "linf".
        noise: explicit noise ``(N, n_samples, C, H, W)`` instead of drawing it (radius is then ignored).
        generator: draws the noise, sample by sample (each draw ``(N, C, H, W)``).
        batch_size: images per ``explain_fn`` call.

    Returns:
        ``(N,)`` >= 0 (or inf, see above).

    Raises:
        ValueError: bad argument (named), or explain_fn returns NaN/inf or a wrong batch size.
    """
    check_images(x)
    n = x.shape[0]
    target = check_target(target, n, x.device)
    check_choice(norm, "norm", ("fro", "linf"))
    check_positive_int(batch_size, "batch_size")
    check_generator(generator)
    if noise is not None:
        if not isinstance(noise, Tensor) or noise.ndim != 5 or noise.shape[0] != n or noise.shape[2:] != x.shape[1:]:
            shape = ", ".join(map(str, x.shape[1:]))
            raise ValueError(f"noise must be a float tensor of shape ({n}, n_samples, {shape}), got {describe(noise)}")
        if not bool(torch.isfinite(noise).all()):
            raise ValueError("noise contains NaN or infinite values")
        n_samples = noise.shape[1]
    else:
        check_positive_int(n_samples, "n_samples")
        if isinstance(radius, bool) or not isinstance(radius, int | float) or not radius > 0:
            raise ValueError(f"radius must be a positive number, got {radius!r}")
    a = explain_in_chunks(explain_fn, model, x, target, batch_size).flatten(1).double()
    denominator = _norm(a, norm)
    worst = torch.zeros(n, dtype=torch.float64, device=x.device)
    group = max(1, batch_size // n)
    for s0 in range(0, n_samples, group):
        s1 = min(s0 + group, n_samples)
        if noise is not None:
            u = noise[:, s0:s1].to(device=x.device, dtype=x.dtype).transpose(0, 1)
        else:
            u = torch.stack(
                [(2 * rand(tuple(x.shape), generator, x.device, x.dtype) - 1) * radius for _ in range(s0, s1)]
            )
        perturbed = (x.unsqueeze(0) + u).reshape(-1, *x.shape[1:])
        a_pert = explain_in_chunks(explain_fn, model, perturbed, target.repeat(s1 - s0), batch_size).flatten(1).double()
        if a_pert.shape[1] != a.shape[1]:
            raise ValueError(f"explain_fn returned {a_pert.shape[1]} elements per perturbed image, {a.shape[1]} for x")
        numerator = _norm(a.repeat(s1 - s0, 1) - a_pert, norm).reshape(s1 - s0, n)
        ratio = torch.where(denominator == 0, torch.where(numerator == 0, 0.0, torch.inf), numerator / denominator)
        worst = torch.maximum(worst, ratio.amax(dim=0))
    return worst.to(x.dtype)
