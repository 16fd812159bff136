"""Pixel/patch flipping: perturbation curves (Bach et al. 2015; Samek et al. 2016) and the areas under them.

A *feature* is a pixel (all channels together) or a non-overlapping ``patch_size x patch_size`` patch, ranked by
its summed attribution (channels summed). The score is the softmax probability of the target class (Quantus's
``PixelFlipping``/``RegionPerturbation`` default, ``softmax=True``) or, with ``score="logit"``, its logit (Quantus's
``softmax=False``); :func:`perturbation_curve_scores` returns both from the same forward passes. Removed features
are filled from a fixed
baseline (``fill="baseline"``) or by ROAD's noisy linear imputation from the kept pixels (``fill="road"``, Rong et
al., ICML 2022), which keeps the removed region's statistics close to the image's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from metrics.functional._checks import (
    check_choice,
    check_generator,
    check_images,
    check_positive_int,
    check_target,
    pixel_map,
)
from metrics.functional._perturb import (
    MODES,
    curve_pair,
    feature_ranks,
    feature_scores,
    pixel_ranks,
    resolve_baseline,
    step_counts,
)
from metrics.functional.road import DEFAULT_NOISE_STD, linear_imputation, road_noise

Order = Literal["morf", "lerf", "random"]
Mode = Literal["deletion", "insertion"]
Baseline = Literal["uniform", "black", "mean"] | Tensor
Fill = Literal["baseline", "road"]
Score = Literal["probability", "logit"]
FILLS = ("baseline", "road")
SCORES = ("probability", "logit")


class CurveScores(NamedTuple):
    """One perturbation curve scored both ways, from the same forward passes: ``(N, S + 1)`` each."""

    probability: Tensor
    logit: Tensor


def _setup(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    baseline: Baseline,
    fill: str,
    noise_std: float,
    noise: Tensor | None,
    patch_size: int,
    n_steps: int | None,
    generator: torch.Generator | None,
    batch_size: int,
) -> tuple[Callable[[str, str], CurveScores], Tensor]:
    """Check the arguments, draw the fill (baseline or ROAD noise), and return ``curve(order, mode)`` (which
    draws a "random" order when called; both scores) with the step counts ``(S + 1,)``."""
    check_images(x)
    target = check_target(target, x.shape[0], x.device)
    check_positive_int(patch_size, "patch_size")
    check_positive_int(batch_size, "batch_size")
    check_generator(generator)
    scores = feature_scores(pixel_map(attributions, x.shape).to(x.device), patch_size)
    counts = step_counts(scores.shape[1], n_steps, x.device)
    check_choice(fill, "fill", FILLS)
    if fill == "baseline":
        if noise is not None:
            raise ValueError('noise is only used with fill="road"')
        base, impute = resolve_baseline(baseline, x, generator), None
    else:
        base, impute = road_noise(x, noise_std, noise, generator, tuple(x.shape)), linear_imputation

    def curve(order: str, mode: str) -> CurveScores:
        check_choice(mode, "mode", MODES)
        ranks = pixel_ranks(feature_ranks(scores, order, generator), x.shape[2], x.shape[3], patch_size)
        return CurveScores(
            *curve_pair(model, x, base, ranks, counts, target, mode=mode, batch_size=batch_size, impute=impute)
        )

    return curve, counts


def _auc(curve: Tensor, counts: Tensor) -> Tensor:
    return torch.trapezoid(curve, counts.to(curve.dtype) / counts[-1].item(), dim=1)


def _pick(score: str) -> int:
    check_choice(score, "score", SCORES)
    return SCORES.index(score)


def curve_auc(curve: Tensor, *, n_features: int) -> Tensor:
    """Area under a :func:`perturbation_curve` ``(N, S + 1)`` over the fraction of features perturbed, ``(N,)``
    (trapezoid rule; the same value :func:`deletion_auc` and :func:`insertion_auc` return)."""
    if curve.ndim != 2 or curve.shape[1] < 2:
        raise ValueError(f"curve must have shape (N, n_steps + 1) with n_steps >= 1, got {tuple(curve.shape)}")
    return _auc(curve, step_counts(n_features, curve.shape[1] - 1, curve.device))


def perturbation_curve_scores(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    *,
    order: Order,
    mode: Mode,
    baseline: Baseline = "uniform",
    fill: Fill = "baseline",
    noise_std: float = DEFAULT_NOISE_STD,
    noise: Tensor | None = None,
    patch_size: int = 1,
    n_steps: int | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> CurveScores:
    """:func:`perturbation_curve` scored both ways from the same forward passes: the target's softmax probability
    and its logit, ``(N, n_steps + 1)`` each (a :class:`CurveScores`). Args and Raises: as
    :func:`perturbation_curve`."""
    curve, _ = _setup(
        model, x, attributions, target, baseline, fill, noise_std, noise, patch_size, n_steps, generator, batch_size
    )
    return curve(order, mode)


def perturbation_curve(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    *,
    order: Order,
    mode: Mode,
    baseline: Baseline = "uniform",
    fill: Fill = "baseline",
    noise_std: float = DEFAULT_NOISE_STD,
    noise: Tensor | None = None,
    patch_size: int = 1,
    n_steps: int | None = None,
    score: Score = "probability",
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Target-class score while features are removed ("deletion") or revealed ("insertion") in ``order``.

    ``curve[i, k] = softmax(model(x_k))[target_i]`` (``score="probability"``) or ``model(x_k)[target_i]``
    (``score="logit"``) where, after step k, the first ``c_k = floor(k * F / n_steps)`` features in the order are
    taken from the baseline (deletion: ``x_k = x`` outside them) or from x (insertion: ``x_k = baseline`` outside
    them); so ``curve[:, 0]`` is the unperturbed (deletion) or baseline (insertion) image. With
    ``n_steps = F / features_in_step`` and ``baseline=0.0``, ``curve[:, 1:]`` equals Quantus's ``PixelFlipping``
    curve (patch_size=1; ``softmax=True`` for probabilities, ``softmax=False`` for logits) and
    ``curve[:, :1] - curve[:, 1:]`` its ``RegionPerturbation``.

    Order: "morf" most relevant first, "lerf" least relevant first, ties broken by lower feature index first
    (row-major; ``np.argsort(-a, kind="stable")``); "random" a permutation per example from ``generator``.
    Baselines: "uniform" U[0,1) noise per element, drawn once per image from ``generator`` (default: a "black"
    baseline leaves Fashion-MNIST's zero background unchanged), "black" 0 (Quantus's "black" is the image minimum,
    the same for images whose minimum is 0), "mean" each image's per-channel mean, or a tensor broadcastable to x.
    The generator draws the baseline first, then the random order. A step that changes no pixel (all newly
    perturbed pixels already equal the baseline) reuses the previous step's score instead of running the model.

    Score: the softmax probability of the target class (default) or its logit. Both come from the same forward
    passes (:func:`perturbation_curve_scores` returns both); the probability is bounded in [0, 1], the logit is not.

    Fill: ``fill="baseline"`` takes removed features from ``baseline`` as above. ``fill="road"`` (ROAD, Rong et al.
    2022) ignores ``baseline`` and fills the removed pixels of each step's image (deletion: the first ``c_k``
    features; insertion: all but them) by :func:`~metrics.functional.road.noisy_linear_imputation` from the kept
    pixels, plus ``noise_std * z`` with one standard-normal ``z`` ``(N, C, H, W)`` per image shared by its steps
    and curves (the generator draws z first, then the random order; ``noise`` gives z explicitly), solved to that
    function's default tolerance (1e-6 relative residual in float32, 1e-10 in float64). Every step is run (the
    imputation changes with each step). With every pixel removed (deletion's last, insertion's first point)
    nothing is known and the imputation is 0 plus the noise.

    Args:
        model: returns logits ``(B, K)``; on x's device, in eval mode.
        x: float ``(N, C, H, W)``.
        attributions: ``(N, C, H, W)``, ``(N, 1, H, W)`` or ``(N, H, W)``; channels are summed.
        target: int64 ``(N,)``.
        order, mode, baseline: see above.
        fill: "baseline" (default) or "road", see above.
        noise_std: ROAD's noise standard deviation (Quantus's and the paper's 0.01); only with ``fill="road"``.
        noise: explicit standard-normal ``z`` ``(N, C, H, W)``; only with ``fill="road"``.
        patch_size: side of the square features; must divide H and W.
        n_steps: number of steps; ``None`` = one feature per step (F steps).
        score: "probability" (default) or "logit", see above.
        generator: source of the "uniform" baseline or ROAD's noise, and the "random" order; ``None`` = torch's
            global RNG.
        batch_size: images per forward pass (and per ROAD imputation).

    Returns:
        ``(N, n_steps + 1)`` probabilities or logits (float32).

    Raises:
        ValueError: bad argument (named), or the model returns NaN/inf logits.
    """
    which = _pick(score)
    curve, _ = _setup(
        model, x, attributions, target, baseline, fill, noise_std, noise, patch_size, n_steps, generator, batch_size
    )
    return curve(order, mode)[which]


def deletion_auc(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    *,
    baseline: Baseline = "uniform",
    fill: Fill = "baseline",
    noise_std: float = DEFAULT_NOISE_STD,
    noise: Tensor | None = None,
    patch_size: int = 1,
    n_steps: int | None = None,
    score: Score = "probability",
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Area under the MoRF deletion curve (lower = more faithful), trapezoid rule over the fraction of features
    removed ``c_k / F`` in [0, 1], including the unperturbed point.

    Args and Raises: as :func:`perturbation_curve`. Returns: ``(N,)``, in [0, 1] for ``score="probability"``.
    """
    which = _pick(score)
    curve, counts = _setup(
        model, x, attributions, target, baseline, fill, noise_std, noise, patch_size, n_steps, generator, batch_size
    )
    return _auc(curve("morf", "deletion")[which], counts)


def insertion_auc(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    *,
    baseline: Baseline = "uniform",
    fill: Fill = "baseline",
    noise_std: float = DEFAULT_NOISE_STD,
    noise: Tensor | None = None,
    patch_size: int = 1,
    n_steps: int | None = None,
    score: Score = "probability",
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Area under the MoRF insertion curve (higher = more faithful): start from the baseline image and reveal the
    most relevant features first; trapezoid over the fraction revealed in [0, 1].

    Args and Raises: as :func:`perturbation_curve`. Returns: ``(N,)``, in [0, 1] for ``score="probability"``.
    """
    which = _pick(score)
    curve, counts = _setup(
        model, x, attributions, target, baseline, fill, noise_std, noise, patch_size, n_steps, generator, batch_size
    )
    return _auc(curve("morf", "insertion")[which], counts)


def abpc(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    *,
    baseline: Baseline = "uniform",
    fill: Fill = "baseline",
    noise_std: float = DEFAULT_NOISE_STD,
    noise: Tensor | None = None,
    patch_size: int = 1,
    n_steps: int | None = None,
    score: Score = "probability",
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Area between the perturbation curves: ``AUC(LeRF deletion) - AUC(MoRF deletion)`` (higher = more faithful),
    both curves with the same baseline images (one "uniform" draw shared by both).

    Args and Raises: as :func:`perturbation_curve`. Returns: ``(N,)``, in [-1, 1] for ``score="probability"``.
    """
    which = _pick(score)
    curve, counts = _setup(
        model, x, attributions, target, baseline, fill, noise_std, noise, patch_size, n_steps, generator, batch_size
    )
    return _auc(curve("lerf", "deletion")[which], counts) - _auc(curve("morf", "deletion")[which], counts)


def deletion_auc_relative(
    model: nn.Module,
    x: Tensor,
    attributions: Tensor,
    target: Tensor,
    *,
    baseline: Baseline = "uniform",
    fill: Fill = "baseline",
    noise_std: float = DEFAULT_NOISE_STD,
    noise: Tensor | None = None,
    patch_size: int = 1,
    n_steps: int | None = None,
    n_random: int = 1,
    score: Score = "probability",
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> Tensor:
    """Deletion AUC relative to chance: ``mean_j AUC(random_j deletion) - AUC(MoRF deletion)`` (higher = more
    faithful; 0 = no better than a random order in expectation).

    Subtracting a random-order curve of the same model and baseline removes an offset (how much the model's
    score falls under the fill whatever is removed), not the scale of the model's reaction: a model whose score
    moves half as much gets half the value (see ``metrics.normalise`` for a score placed between the model's own
    floor and ceiling). ``n_random`` random orders per example are averaged; the generator draws the baseline
    first, then the orders.

    Args and Raises: as :func:`perturbation_curve`. Returns: ``(N,)``, in [-1, 1] for ``score="probability"``.
    """
    check_positive_int(n_random, "n_random")
    which = _pick(score)
    curve, counts = _setup(
        model, x, attributions, target, baseline, fill, noise_std, noise, patch_size, n_steps, generator, batch_size
    )
    morf = _auc(curve("morf", "deletion")[which], counts)
    random_auc = torch.stack([_auc(curve("random", "deletion")[which], counts) for _ in range(n_random)]).mean(dim=0)
    return random_auc - morf
