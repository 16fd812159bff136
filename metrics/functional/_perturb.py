"""Perturbation machinery shared by the faithfulness metrics: baselines, feature rankings, chunked model scoring
and lazily built, de-duplicated perturbation curves."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from metrics.functional._checks import check_choice, describe

BASELINES = ("uniform", "black", "mean")
ORDERS = ("morf", "lerf", "random")
MODES = ("deletion", "insertion")


def rand(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype = torch.float32
) -> Tensor:
    """U[0, 1) drawn on the generator's device (so a CPU generator gives the same numbers for any ``device``),
    then moved to ``device``; ``generator=None`` uses torch's global RNG of ``device``."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where, dtype=dtype).to(device)


def randn(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device, dtype: torch.dtype = torch.float32
) -> Tensor:
    """N(0, 1) drawn like :func:`rand` (on the generator's device, then moved to ``device``)."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=dtype).to(device)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether a tensor of ``shape`` broadcasts to ``target`` (each trailing dimension 1 or equal), without
    ``torch.broadcast_shapes``, whose first call imports sympy (0.3 s in every worker that scores a curve).

    >>> _broadcasts_to((1, 28, 28), (4, 1, 28, 28)), _broadcasts_to((2, 1, 28, 28), (4, 1, 28, 28))
    (True, False)
    """
    return len(shape) <= len(target) and all(s in (1, t) for s, t in zip(shape[::-1], target[::-1], strict=False))


def resolve_baseline(baseline: str | Tensor, x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Baseline images ``(N, C, H, W)``: "uniform" U[0,1) noise per element (from ``generator``), "black" zeros,
    "mean" each image's per-channel mean, or a tensor broadcastable to x."""
    if isinstance(baseline, Tensor):
        if not _broadcasts_to(tuple(baseline.shape), tuple(x.shape)):
            raise ValueError(
                f"baseline tensor of shape {tuple(baseline.shape)} is not broadcastable to x {tuple(x.shape)}"
            )
        if not bool(torch.isfinite(baseline).all()):
            raise ValueError("baseline contains NaN or infinite values")
        return baseline.to(device=x.device, dtype=x.dtype).expand_as(x)
    check_choice(baseline, "baseline", BASELINES)
    if baseline == "uniform":
        return rand(tuple(x.shape), generator, x.device, x.dtype)
    if baseline == "black":
        return torch.zeros_like(x)
    return x.mean(dim=(2, 3), keepdim=True).expand_as(x)


def feature_scores(pmap: Tensor, patch_size: int) -> Tensor:
    """Per-feature attribution ``(N, F)``: pixels row-major, or sums over non-overlapping patches (row-major)."""
    n, h, w = pmap.shape
    if patch_size == 1:
        return pmap.reshape(n, h * w)
    if h % patch_size or w % patch_size:
        raise ValueError(f"patch_size {patch_size} does not divide the image size {h}x{w}")
    p = patch_size
    return pmap.reshape(n, h // p, p, w // p, p).sum(dim=(2, 4)).reshape(n, -1)


def feature_ranks(scores: Tensor, order: str, generator: torch.Generator | None) -> Tensor:
    """Rank ``(N, F)`` of each feature in the perturbation order (0 = perturbed first).

    "morf": descending attribution, "lerf": ascending; ties keep the lower feature index first (a stable sort,
    ``np.argsort(-a, kind="stable")`` / ``np.argsort(a, kind="stable")``). "random": a uniform permutation per
    example from ``generator``.
    """
    check_choice(order, "order", ORDERS)
    if order == "random":
        perm = rand(tuple(scores.shape), generator, scores.device).argsort(dim=1)
    else:
        perm = torch.sort(scores, dim=1, descending=order == "morf", stable=True).indices
    ranks = torch.empty_like(perm)
    ranks.scatter_(1, perm, torch.arange(perm.shape[1], device=perm.device).expand_as(perm))
    return ranks


def pixel_ranks(ranks: Tensor, h: int, w: int, patch_size: int) -> Tensor:
    """Feature ranks ``(N, F)`` spread to pixels ``(N, H, W)`` (every pixel of a patch gets the patch's rank)."""
    n = ranks.shape[0]
    if patch_size == 1:
        return ranks.reshape(n, h, w)
    p = patch_size
    grid = ranks.reshape(n, h // p, w // p)
    return grid.repeat_interleave(p, dim=1).repeat_interleave(p, dim=2)


def step_counts(n_features: int, n_steps: int | None, device: torch.device) -> Tensor:
    """Features perturbed after each step, ``(n_steps + 1,)``: ``floor(k * F / n_steps)`` for k = 0..n_steps."""
    if n_steps is None:
        n_steps = n_features
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or not 1 <= n_steps <= n_features:
        raise ValueError(f"n_steps must be an int in [1, {n_features}] (the number of features), got {n_steps!r}")
    return torch.arange(n_steps + 1, device=device) * n_features // n_steps


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(start + size, total)


def model_outputs(
    model: nn.Module,
    batches: Iterator[tuple[Tensor, Tensor]],
    *,
    dtype: torch.dtype | None = torch.float32,
) -> tuple[Tensor, Tensor]:
    """Target-class softmax probabilities and logits of the model over ``(images, target)`` batches, from the same
    forward passes, concatenated: ``((B,), (B,))`` as ``dtype`` (``None``: the model's output dtype). Raises
    ``ValueError`` if the model returns NaN/inf."""
    probs, logits_out, finite = [], [], []
    with torch.inference_mode():
        for images, target in batches:
            logits = model(images)
            if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != images.shape[0]:
                raise ValueError(
                    f"model must return logits of shape (B, num_classes) for a batch of "
                    f"{images.shape[0]} images, got {describe(logits)}"
                )
            if bool((target >= logits.shape[1]).any()):
                raise ValueError(f"target holds class indices >= the model's {logits.shape[1]} outputs")
            finite.append(torch.isfinite(logits).all())
            probs.append(logits.softmax(dim=-1).gather(1, target[:, None]).squeeze(1))
            logits_out.append(logits.gather(1, target[:, None]).squeeze(1))
    if not bool(torch.stack(finite).all()):
        raise ValueError("model returned NaN or infinite logits; the metric is undefined for such inputs")
    p, z = torch.cat(probs), torch.cat(logits_out)
    return (p, z) if dtype is None else (p.to(dtype), z.to(dtype))


def model_scores(
    model: nn.Module,
    batches: Iterator[tuple[Tensor, Tensor]],
    *,
    softmax: bool,
    dtype: torch.dtype | None = torch.float32,
) -> Tensor:
    """Target scores of the model over ``(images, target)`` batches, concatenated: the softmax probability of
    the target class (``softmax=True``) or its logit, as ``dtype`` (``None``: the model's output dtype). Raises
    ``ValueError`` if the model returns NaN/inf."""
    probs, logits = model_outputs(model, batches, dtype=dtype)
    return probs if softmax else logits


def curves(
    model: nn.Module,
    x: Tensor,
    base: Tensor,
    ranks: Tensor,
    counts: Tensor,
    target: Tensor,
    *,
    mode: str,
    softmax: bool,
    batch_size: int,
    x_index: Tensor | None = None,
    rank_index: Tensor | None = None,
    impute: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> Tensor:
    """Scores ``(R, S)`` of :func:`curve_pair`: the target's softmax probability (``softmax=True``) or its logit."""
    probs, logits = curve_pair(
        model,
        x,
        base,
        ranks,
        counts,
        target,
        mode=mode,
        batch_size=batch_size,
        x_index=x_index,
        rank_index=rank_index,
        impute=impute,
    )
    return probs if softmax else logits


def curve_pair(
    model: nn.Module,
    x: Tensor,
    base: Tensor,
    ranks: Tensor,
    counts: Tensor,
    target: Tensor,
    *,
    mode: str,
    batch_size: int,
    x_index: Tensor | None = None,
    rank_index: Tensor | None = None,
    impute: Callable[[Tensor, Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Target probabilities and target logits ``(R, S)`` each, from the same forward passes, along perturbation
    curves, one row per baseline row ``r`` of ``base`` ``(R, C, H, W)``.

    Step k of row r shows ``x[x_index[r]]`` with the pixels of rank ``< counts[k]`` (``ranks[rank_index[r]]``,
    ``(H, W)`` each) replaced by ``base[r]`` ("deletion"), or ``base[r]`` with those pixels taken from x
    ("insertion"). An image identical to the previous step's (every newly perturbed pixel already equals the
    baseline) is not run again: it reuses that step's score. Images are built chunk by chunk (``batch_size``).

    With ``impute`` (ROAD), the removed pixels (perturbed in "deletion", not yet revealed in "insertion") are
    filled with ``impute(images, removed) + base[r]`` instead (``base`` holds the noise; ``impute`` returns the
    images with the removed pixels replaced), and every step is run.
    """
    n_rows, n_steps = base.shape[0], counts.shape[0]
    x_index = torch.arange(n_rows, device=x.device) if x_index is None else x_index
    rank_index = torch.arange(n_rows, device=x.device) if rank_index is None else rank_index
    if impute is None:
        # changed[r, k]: does step k alter any pixel relative to step k - 1?
        rows = ranks[rank_index].flatten(1)
        n_features = int(counts[-1])
        differs = (x[x_index] != base).any(dim=1).flatten(1)
        by_rank = torch.zeros(n_rows, n_features + 1, device=x.device)
        by_rank.scatter_reduce_(1, rows + 1, differs.float(), reduce="amax", include_self=True)
        cumulative = by_rank.cumsum(dim=1)
        changed = cumulative[:, counts[1:]] > cumulative[:, counts[:-1]]
        evaluate = torch.cat([torch.ones(n_rows, 1, dtype=torch.bool, device=x.device), changed], dim=1)
    else:
        evaluate = torch.ones(n_rows, n_steps, dtype=torch.bool, device=x.device)
    pairs = evaluate.nonzero()
    steps_rank = torch.arange(n_steps, device=x.device).expand(n_rows, n_steps)
    source = torch.where(evaluate, steps_rank, torch.zeros_like(steps_rank)).cummax(dim=1).values
    deletion = mode == "deletion"

    def make(start: int, stop: int) -> tuple[Tensor, Tensor]:
        r, k = pairs[start:stop, 0], pairs[start:stop, 1]
        mask = (ranks[rank_index[r]] < counts[k][:, None, None]).unsqueeze(1)
        xs = x[x_index[r]]
        if impute is not None:
            removed = mask if deletion else ~mask
            images = torch.where(removed, impute(xs, removed) + base[r], xs)
        else:
            images = torch.where(mask, base[r], xs) if deletion else torch.where(mask, xs, base[r])
        return images, target[x_index[r]]

    outputs = model_outputs(model, (make(a, b) for a, b in chunks(pairs.shape[0], batch_size)))
    tables = []
    for scores in outputs:
        table = torch.zeros(n_rows, n_steps, device=x.device)
        table[pairs[:, 0], pairs[:, 1]] = scores.to(x.device)
        tables.append(table.gather(1, source))
    return tables[0], tables[1]
