"""Statistics for reported numbers (numpy in, floats out): intervals of means, proportions and differences; paired
and recipe-level (seeds x images, or a pooled seed variance) comparisons; exact permutation tests of rank
correlations with recipes or eps levels as the units; multiplicity adjustment; intervals for FID."""

from metrics.stats.fid import fid_infinity, fid_interval
from metrics.stats.hierarchical import (
    RecipeDifference,
    VarianceComponents,
    dose_response_test,
    recipe_difference,
    two_level_bootstrap,
    variance_components,
)
from metrics.stats.intervals import bootstrap_difference, bootstrap_interval, spearman_bootstrap, wilson_interval
from metrics.stats.multiplicity import benjamini_hochberg, holm
from metrics.stats.paired import (
    PairedComparison,
    drop_nan_pairs,
    paired_bootstrap_difference,
    paired_comparison,
    paired_permutation_test,
    paired_t_interval,
)
from metrics.stats.permutation import spearman_permutation_test
from metrics.stats.pooled import (
    PooledRecipeDifference,
    PooledSeedVariance,
    RecipeComparison,
    pooled_recipe_difference,
    pooled_seed_variance,
    recipe_comparison,
)
from metrics.stats.units import UnitCorrelation, dose_response, recipe_correlation, unit_means

__all__ = [
    "PairedComparison",
    "PooledRecipeDifference",
    "PooledSeedVariance",
    "RecipeComparison",
    "RecipeDifference",
    "UnitCorrelation",
    "VarianceComponents",
    "benjamini_hochberg",
    "bootstrap_difference",
    "bootstrap_interval",
    "dose_response",
    "dose_response_test",
    "drop_nan_pairs",
    "fid_infinity",
    "fid_interval",
    "holm",
    "paired_bootstrap_difference",
    "paired_comparison",
    "paired_permutation_test",
    "paired_t_interval",
    "pooled_recipe_difference",
    "pooled_seed_variance",
    "recipe_comparison",
    "recipe_correlation",
    "recipe_difference",
    "spearman_bootstrap",
    "spearman_permutation_test",
    "two_level_bootstrap",
    "unit_means",
    "variance_components",
    "wilson_interval",
]
