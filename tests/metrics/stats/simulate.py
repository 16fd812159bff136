"""A simulated model zoo for the calibration tests of ``metrics.stats``: recipes x seeds x images with known effects.

Per-image score of seed s of recipe r on image i:

    y[r, s, i] = mu_r + u[r, s] + w[i] + v[r, i] + e[r, s, i]

``mu_r``: the recipe effect (N(0, recipe_sd^2) plus ``trend`` times the recipe's eps); ``u``: seed effects,
N(0, seed_sd^2); ``w``: image difficulty shared by every model, N(0, image_sd^2); ``v``: the recipe's own view of
an image, N(0, recipe_image_sd^2); ``e``: seed-by-image noise, N(0, noise_sd^2). A model's robust accuracy is
``a_r + b[r, s]`` with its own recipe effect ``a_r ~ N(0.5, acc_recipe_sd^2)``, drawn independently of ``mu_r``
(so under ``trend = 0`` the score is unrelated to robustness across recipes), and seed noise ``b ~ N(0,
acc_seed_sd^2)``.

The defaults are the board's variance components for ABPC (expected gradients, U[0,1] fill), measured on the two
3-seed recipes of the archive (standard and FGSM-RS 0.1) with ``variance_components``: seed SD 0.02-0.03, image SD
0.16-0.25 (of which recipe-specific ~0.1), seed-by-image SD 0.05-0.10, 100 images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SEED_SD, IMAGE_SD, RECIPE_IMAGE_SD, NOISE_SD = 0.025, 0.15, 0.1, 0.08
N_IMAGES = 100


@dataclass(frozen=True)
class Zoo:
    """One simulated zoo of M models: ``recipe`` int ``(M,)``, ``eps`` ``(M,)`` (each recipe's), ``robust_acc``
    ``(M,)``, ``scores`` ``(M, N)`` per-image scores; ``mu`` ``(R,)`` the true recipe means."""

    recipe: np.ndarray
    eps: np.ndarray
    robust_acc: np.ndarray
    scores: np.ndarray
    mu: np.ndarray

    def of(self, r: int) -> np.ndarray:
        """Recipe r's per-image scores ``(S_r, N)``."""
        return self.scores[self.recipe == r]

    @property
    def model_means(self) -> np.ndarray:
        """Each model's mean score over the images ``(M,)``."""
        return self.scores.mean(axis=1)


def zoo(
    rng: np.random.Generator,
    seeds: Sequence[int],
    *,
    n_images: int = N_IMAGES,
    recipe_sd: float = 0.0,
    seed_sd: float | Sequence[float] = SEED_SD,
    image_sd: float = IMAGE_SD,
    recipe_image_sd: float = RECIPE_IMAGE_SD,
    noise_sd: float = NOISE_SD,
    eps: Sequence[float] | None = None,
    trend: float = 0.0,
    acc_recipe_sd: float = 0.1,
    acc_seed_sd: float = 0.005,
) -> Zoo:
    """Draw a zoo with ``len(seeds)`` recipes, recipe r having ``seeds[r]`` models; ``seed_sd`` may differ per
    recipe (a sequence), ``eps`` gives each recipe's training eps (default 0)."""
    k = len(seeds)
    eps_r = np.zeros(k) if eps is None else np.asarray(eps, dtype=np.float64)
    sd_r = np.broadcast_to(np.asarray(seed_sd, dtype=np.float64), (k,))
    mu = recipe_sd * rng.normal(size=k) + trend * eps_r
    acc = 0.5 + acc_recipe_sd * rng.normal(size=k)
    w = image_sd * rng.normal(size=n_images)
    recipe = np.repeat(np.arange(k), seeds)
    m = recipe.size
    v = recipe_image_sd * rng.normal(size=(k, n_images))
    u = sd_r[recipe] * rng.normal(size=m)
    scores = mu[recipe, None] + u[:, None] + w[None, :] + v[recipe] + noise_sd * rng.normal(size=(m, n_images))
    robust_acc = acc[recipe] + acc_seed_sd * rng.normal(size=m)
    return Zoo(recipe, eps_r[recipe], robust_acc, scores, mu)


def mc_bound(rate: float, sims: int) -> float:
    """``rate + 2 sqrt(rate (1 - rate) / sims)``: a nominal rate plus twice its Monte Carlo standard error."""
    return rate + 2 * float(np.sqrt(rate * (1 - rate) / sims))
