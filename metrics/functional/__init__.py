"""Batched, device-agnostic interpretability metrics: tensors in, per-example tensors out.

Conventions: ``fn(model, x, attributions, target, *, knobs..., generator=None, batch_size=...)`` with x float
``(N, C, H, W)`` in [0, 1], attributions shaped like x (or ``(N, 1, H, W)`` / ``(N, H, W)``), target int64
``(N,)``; every metric returns ``(N,)`` (curves ``(N, S)``); randomness only from the ``generator`` argument or
explicit indices/noise; bad input raises ``ValueError`` naming the argument.
"""

from metrics.functional._stats import spearman
from metrics.functional.complexity import sparseness
from metrics.functional.degenerate import Degenerate, count_degenerate, degenerate_maps
from metrics.functional.faithfulness import (
    abpc,
    curve_auc,
    deletion_auc,
    deletion_auc_relative,
    insertion_auc,
    perturbation_curve,
    perturbation_curve_scores,
)
from metrics.functional.faithfulness_correlation import faithfulness_correlation
from metrics.functional.infidelity import infidelity, infidelity_gaussian
from metrics.functional.localisation import (
    grid_pointing_game,
    pointing_game,
    relevance_mass_accuracy,
    relevance_mass_ratio,
    relevance_rank_accuracy,
)
from metrics.functional.occlusion import OcclusionMaps, pixel_occlusion
from metrics.functional.randomisation import (
    discrete_entropy,
    efficient_model_parameter_randomisation,
    model_parameter_randomisation,
    model_parameter_randomisation_score,
    randomisable_layers,
    smooth_model_parameter_randomisation,
)
from metrics.functional.road import noisy_linear_imputation, road_curve, single_pixel_imputation
from metrics.functional.robustness import max_sensitivity

__all__ = [
    "Degenerate",
    "OcclusionMaps",
    "abpc",
    "count_degenerate",
    "curve_auc",
    "degenerate_maps",
    "deletion_auc",
    "deletion_auc_relative",
    "discrete_entropy",
    "efficient_model_parameter_randomisation",
    "faithfulness_correlation",
    "grid_pointing_game",
    "infidelity",
    "infidelity_gaussian",
    "insertion_auc",
    "max_sensitivity",
    "model_parameter_randomisation",
    "model_parameter_randomisation_score",
    "noisy_linear_imputation",
    "perturbation_curve",
    "pixel_occlusion",
    "perturbation_curve_scores",
    "pointing_game",
    "randomisable_layers",
    "relevance_mass_accuracy",
    "relevance_mass_ratio",
    "relevance_rank_accuracy",
    "road_curve",
    "single_pixel_imputation",
    "smooth_model_parameter_randomisation",
    "sparseness",
    "spearman",
]
