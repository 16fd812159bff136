"""Faithfulness correlation (Bhatt, Weller and Moura, IJCAI 2020), as Quantus's ``FaithfulnessCorrelation``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
from torch import Tensor, nn

from metrics.functional._checks import (
    check_generator,
    check_images,
    check_positive_int,
    check_target,
    describe,
    pixel_map,
)
from metrics.functional._perturb import chunks, model_scores, rand, resolve_baseline
from metrics.functional._stats import pearson

_DRAW_CHUNK = 64  # examples per draw of random subsets: fixed, so results do not depend on batch_size


def _draw_subsets(
    n: int, n_runs: int, subset_size: int, n_features: int, generator: torch.Generator | None, device: torch.device
) -> Tensor:
    parts = [
        rand((b - a, n_runs, n_features), generator, device).topk(subset_size, dim=-1).indices
        for a, b in chunks(n, _DRAW_CHUNK)
    ]
    return torch.cat(parts)


def _check_subsets(subsets: object, n: int, n_features: int, device: torch.device) -> Tensor:
    if (
        not isinstance(subsets, Tensor)
        or subsets.dtype != torch.int64
        or subsets.ndim != 3
        or subsets.shape[0] != n
        or subsets.shape[1] < 2
        or subsets.shape[2] < 1
    ):
        raise ValueError(
            f"subsets must be an int64 tensor of shape ({n}, n_runs >= 2, subset_size), got {describe(subsets)}"
        )
    if bool(((subsets < 0) | (subsets >= n_features)).any()):
        raise ValueError(f"subsets holds pixel indices outside [0, {n_features})")
    return subsets.to(device)


def faithfulness_correlation(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    *,
    n_runs: int = 100,
    subset_size: int = 224,
    baseline: Literal["uniform", "black", "mean"] | Tensor = "black",
    softmax: bool = False,
    subsets: Tensor | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Pearson correlation, over ``n_runs`` random pixel subsets S, between the attribution in S and the drop
    in the target score when S is replaced by the baseline (higher = more faithful).

    ``rho_i = pearson_r( sum_{p in S_r} a_i[p],  f(x_i)[t_i] - f(x_i with S_r from the baseline)[t_i] )``.

    Quantus's defaults: score = target logit (``softmax=False``), baseline "black", 100 runs of 224 pixels.
    Pixels are row-major indices in [0, H*W) and carry all channels; a pixel's attribution is summed over
    channels. Baselines as in :func:`perturbation_curve` ("uniform": one noise image per example, shared by its
    runs; "black": 0, which leaves Fashion-MNIST's zero background unchanged). If the attribution sums or the
    score drops are constant over the runs (e.g. all-zero attributions), the correlation is undefined and 0.0
    is returned.

    Args:
        model: returns logits ``(B, K)``; on x's device, in eval mode.
        x: float ``(N, C, H, W)``.
        attributions: ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``.
        target: int64 ``(N,)``.
        n_runs, subset_size: number and size of the random subsets (ignored when ``subsets`` is given).
        baseline: "black", "uniform", "mean" or a tensor broadcastable to x.
        softmax: score = softmax probability instead of the logit.
        subsets: explicit int64 ``(N, n_runs, subset_size)`` pixel indices (e.g. Quantus's), instead of drawing.
        generator: draws the subsets (uniform without replacement), then a "uniform" baseline.
        batch_size: images per forward pass.

    Returns:
        ``(N,)`` in [-1, 1].

    Raises:
        ValueError: bad argument (named), or the model returns NaN/inf logits.
    """
    check_images(x)
    n, c, h, w = x.shape
    target = check_target(target, n, x.device)
    check_positive_int(batch_size, "batch_size")
    check_generator(generator)
    pmap = pixel_map(attributions, x.shape).to(x.device).reshape(n, h * w)
    if subsets is None:
        check_positive_int(n_runs, "n_runs", minimum=2)
        check_positive_int(subset_size, "subset_size")
        if subset_size >= h * w:
            raise ValueError(f"subset_size must be smaller than the {h * w} pixels, got {subset_size}")
        subsets = _draw_subsets(n, n_runs, subset_size, h * w, generator, x.device)
    else:
        subsets = _check_subsets(subsets, n, h * w, x.device)
    n_runs = subsets.shape[1]
    base = resolve_baseline(baseline, x, generator)
    att_sums = pmap.gather(1, subsets.reshape(n, -1)).reshape(subsets.shape).sum(dim=-1)

    def batches() -> Iterator[tuple[Tensor, Tensor]]:
        for start, stop in chunks(n, batch_size):
            yield x[start:stop], target[start:stop]
        flat = subsets.reshape(n * n_runs, -1)
        for start, stop in chunks(n * n_runs, batch_size):
            i = torch.arange(start, stop, device=x.device) // n_runs
            mask = torch.zeros(stop - start, h * w, dtype=torch.bool, device=x.device)
            mask.scatter_(1, flat[start:stop], True)
            yield torch.where(mask.reshape(-1, 1, h, w), base[i], x[i]), target[i]

    scores = model_scores(model, batches(), softmax=softmax).to(x.device)
    drops = scores[:n, None] - scores[n:].reshape(n, n_runs)
    return pearson(att_sums, drops).to(x.dtype)
