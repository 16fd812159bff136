"""Model parameter randomisation and the Spearman helper: against Quantus's MPRT and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import scipy.stats
import torch

from metrics.functional import (
    discrete_entropy,
    efficient_model_parameter_randomisation,
    model_parameter_randomisation,
    model_parameter_randomisation_score,
    randomisable_layers,
    smooth_model_parameter_randomisation,
    spearman,
)
from tests.metrics.conftest import ConstantLogits, quantus_saliency, record_numpy_random, run_quantus, saliency
from tests.metrics.rounding import U32, U64, Float64, float64_per_image, gamma

# MPRT against Quantus: both sides re-initialise the same float64 model copy (rounding.Float64) with the same seeds
# and explain the same 4 images in one call per layer, normalised as Quantus does (divided by the batch's max |a|,
# then |a|), so the maps whose ranks are compared are equal. Ranks are exact; a float64 Pearson of n = 784 ranks
# errs by <= ~3 gamma_784 u64 on each side (sums of products bounded by Cauchy-Schwarz): TOL = 1e-12 > 6 gamma_784.
TOL = 1e-12


def _quantus_normalised_saliency(model, x, target):
    a = saliency(model, x, target)
    return a / a.abs().amax()


@pytest.mark.parametrize("order", ["top_down", "bottom_up"])
def test_matches_quantus_mprt(order, standard_model, images):
    model = Float64(standard_model)
    x, y = images[0][:4], images[1][:4]
    a = saliency(model, x.double(), y)
    metric = quantus.MPRT(seed=42, layer_order=order, disable_warnings=True)
    q = run_quantus(metric, model, x, y, a, explain_func=quantus_saliency)
    ours = model_parameter_randomisation(
        model, x.double(), y, _quantus_normalised_saliency, order=order, generator=torch.Generator().manual_seed(43)
    )
    layers = [name for name in q if name != "original"]
    assert layers == randomisable_layers(model, order)
    assert 6 * gamma(784, U64) < TOL
    np.testing.assert_allclose(ours.numpy(), np.array([q[name] for name in layers]).T, atol=TOL, rtol=0)
    # Summaries: "last" is Quantus's return_last_correlation; Quantus's return_average_correlation also averages
    # in its "original" entry (1.0), i.e. (1 + L * mean) / (L + 1).
    n_layers = len(layers)
    np.testing.assert_allclose(ours[:, -1].numpy(), metric.recompute_last_correlation_per_sample(), atol=TOL)
    np.testing.assert_allclose(
        ((1 + n_layers * ours.mean(dim=1)) / (n_layers + 1)).numpy(),
        metric.recompute_average_correlation_per_sample(),
        atol=TOL,
    )


def _tiny_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 10),
    ).eval()


@pytest.mark.parametrize("order", ["top_down", "bottom_up", "independent"])
def test_model_and_global_rng_untouched_and_deterministic(order, images):
    # A per-image float64 model explains each image identically in any batch, so batch_size cannot change the
    # results (atol 1e-12 only absorbs float64 kernel nondeterminism, were there any).
    model = float64_per_image(_tiny_cnn())
    x, y = images[0][:3].double(), images[1][:3]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    run = lambda seed, bs=256: model_parameter_randomisation(  # noqa: E731
        model,
        x,
        y,
        saliency,
        order=order,  # noqa: E731
        batch_size=bs,
        generator=torch.Generator().manual_seed(seed),
    )
    first = run(1)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
    assert first.shape == (3, 3)
    assert torch.equal(first, run(1))
    assert not torch.equal(first, run(2))
    np.testing.assert_allclose(run(1, bs=2).numpy(), first.numpy(), atol=1e-12, rtol=0)
    score = model_parameter_randomisation_score(
        model, x, y, saliency, order=order, reduction="last", generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(score, first[:, -1])
    # Cascading: once every layer is random, top-down and bottom-up reach the same fully random model (the same
    # weights: equal explanations and scores by construction).
    if order != "independent":
        other = "bottom_up" if order == "top_down" else "top_down"
        g = torch.Generator().manual_seed(1)
        last = model_parameter_randomisation(model, x, y, saliency, order=other, generator=g)[:, -1]
        np.testing.assert_allclose(first[:, -1].numpy(), last.numpy(), atol=1e-12, rtol=0)


def test_spearman_matches_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 6, (5, 40), generator=g).double()
    b = torch.randn(5, 40, generator=g, dtype=torch.float64)
    b[:, :10] = 0.0
    expected = np.array([scipy.stats.spearmanr(a[i], b[i])[0] for i in range(5)])
    # Exact ranks, float64 Pearson of 40 of them on both sides: <= 2 * 3 gamma_40 u64 ~ 3e-14.
    np.testing.assert_allclose(spearman(a, b).numpy(), expected, atol=1e-12)
    # float32 inputs: rounding b to float32 keeps its order and creates no ties here (checked), so the ranks are the
    # same; the result is returned in float32 (<= u32 for |rho| <= 1).
    assert all(len(set(row.tolist())) == len(set(row.float().tolist())) for row in b)
    ours32 = spearman(a.float().reshape(5, 1, 5, 8), b.float().reshape(5, 1, 5, 8))
    assert ours32.dtype == torch.float32
    np.testing.assert_allclose(ours32.numpy(), expected, atol=U32 + 1e-12, rtol=0)
    # |rho(a, a) - 1| <= ~3 gamma_40 u64 ~ 1.3e-14, well inside allclose's default rtol 1e-5.
    assert spearman(a, a).allclose(torch.ones(5, dtype=torch.float64))
    assert spearman(a, -a).allclose(-torch.ones(5, dtype=torch.float64))


def test_spearman_constant_is_zero_and_bad_inputs_raise():
    a = torch.rand(3, 10)
    assert torch.equal(spearman(a, torch.ones(3, 10)), torch.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        spearman(a, a[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        spearman(a * float("nan"), a)


def test_bad_arguments_raise(standard_model, images):
    x, y = images[0][:2], images[1][:2]
    with pytest.raises(ValueError, match="order"):
        model_parameter_randomisation(standard_model, x, y, saliency, order="sideways")
    with pytest.raises(ValueError, match="similarity"):
        model_parameter_randomisation(standard_model, x, y, saliency, similarity="kendall")
    with pytest.raises(ValueError, match="generator"):
        model_parameter_randomisation(standard_model, x, y, saliency, generator=42)
    with pytest.raises(ValueError, match="explain_fn"):
        model_parameter_randomisation(standard_model, x, y, lambda m, x, t: x[0])
    with pytest.raises(ValueError, match="NaN or infinite attributions"):
        model_parameter_randomisation(standard_model, x, y, lambda m, x, t: x * float("nan"))
    with pytest.raises(ValueError, match="reset_parameters"):
        model_parameter_randomisation(ConstantLogits([1.0, 2.0]), x, torch.zeros(2, dtype=torch.int64), saliency)


# EfficientMPRT / SmoothMPRT. Both sides explain the same float32 batches with the same re-initialised weights, so
# the explanations are bitwise equal; the histogram binning replicates numpy's arithmetic exactly (tested below), so
# the entropies agree to float64 rounding (observed ~2e-16) and the smoothed Spearman scores to float32 (~6e-9).


def test_discrete_entropy_matches_numpy_histogram_and_scipy():
    rng = np.random.default_rng(0)
    rows = [
        rng.random(784),
        np.abs(rng.standard_normal(784)) ** 3,
        rng.integers(0, 101, 784) * 0.37 + 1e3,  # values on the bin edges
        rng.integers(0, 7, 784) / 7.0,
        np.full(784, 2.5),  # constant: one bin, entropy 0
    ]
    for dtype in (np.float32, np.float64):
        a = np.stack(rows).astype(dtype)
        for n_bins in (100, 7):
            expected = [scipy.stats.entropy(np.histogram(r, bins=n_bins)[0]) for r in a]
            ours = discrete_entropy(torch.from_numpy(a).reshape(5, 1, 28, 28), n_bins=n_bins)
            np.testing.assert_allclose(ours.numpy(), expected, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="n_bins"):
        discrete_entropy(torch.rand(2, 5), n_bins=0)
    with pytest.raises(ValueError, match="NaN"):
        discrete_entropy(torch.full((2, 5), float("nan")))


@pytest.mark.parametrize(("order", "abs"), [("bottom_up", False), ("independent", True)])
def test_matches_quantus_efficient_mprt(order, abs, standard_model, images, standard_saliency):
    x, y, a = images[0][:4], images[1][:4], standard_saliency[:4]
    metric = quantus.EfficientMPRT(seed=42, layer_order=order, abs=abs, disable_warnings=True)
    q = run_quantus(metric, standard_model, x, y, a, explain_func=quantus_saliency)
    for given in (None, a):
        ours = efficient_model_parameter_randomisation(
            standard_model,
            x,
            y,
            saliency,
            order=order,
            abs=abs,
            attributions=given,
            generator=torch.Generator().manual_seed(43),
        )
        np.testing.assert_allclose(ours.numpy(), q, atol=1e-12, rtol=0)
    # the same number from the entropies Quantus stores: (H(fully random) - H(trained)) / H(trained)
    h = list(metric.explanation_scores_by_layer.values())
    np.testing.assert_allclose(q, (np.array(h[-1]) - np.array(h[0])) / np.array(h[0]), atol=1e-15)


@pytest.mark.parametrize("given", [True, False])
def test_matches_quantus_smooth_mprt(given, standard_model, images, standard_saliency):
    """Quantus draws ``np.random.randn`` per noisy sample (S - 1 per smoothed explanation): for the reference if
    a_batch is None, then its "original" entry (not computed by us), then each layer; we feed the same draws."""
    x, y, a = images[0][:4], images[1][:4], standard_saliency[:4]
    n_samples, layers = 4, randomisable_layers(standard_model, "bottom_up")
    metric = quantus.SmoothMPRT(seed=42, nr_samples=n_samples, disable_warnings=True)
    with record_numpy_random("randn") as draws:
        q = run_quantus(
            metric,
            standard_model,
            x,
            y,
            a if given else None,
            explain_func=quantus_saliency,
            explain_func_kwargs={"method": "Saliency"},
        )
    per_state = n_samples - 1
    assert len(draws) == per_state * (len(layers) + 2 - given)
    states = [np.stack(draws[i : i + per_state]) for i in range(0, len(draws), per_state)]
    noise = torch.from_numpy(np.stack(states[:1] + states[2:] if not given else states[1:]))
    ours = smooth_model_parameter_randomisation(
        standard_model,
        x,
        y,
        saliency,
        n_samples=n_samples,
        attributions=a if given else None,
        noise=noise,
        batch_size=4,
        generator=torch.Generator().manual_seed(43),
    )
    assert list(q) == ["original", *layers]
    np.testing.assert_allclose(ours.numpy(), np.array([q[name] for name in layers]).T, atol=1e-6, rtol=0)


def test_smooth_mprt_skip_layers_and_generator(images):
    """skip_layers keeps only the fully randomised state, which the cascade reaches in either direction; with one
    sample (no noise) the smoothed explanation is the explanation, so Smooth MPRT equals MPRT's last column."""
    model = _tiny_cnn()
    x, y = images[0][:3], images[1][:3]
    plain = model_parameter_randomisation(model, x, y, saliency, generator=torch.Generator().manual_seed(5))
    one = smooth_model_parameter_randomisation(
        model, x, y, saliency, n_samples=1, skip_layers=True, generator=torch.Generator().manual_seed(5)
    )
    assert one.shape == (3, 1)
    np.testing.assert_allclose(one[:, 0].numpy(), plain[:, -1].numpy(), atol=1e-6)
    run = lambda seed: smooth_model_parameter_randomisation(  # noqa: E731
        model,
        x,
        y,
        saliency,
        n_samples=3,
        skip_layers=True,
        generator=torch.Generator().manual_seed(5),
        noise_generator=torch.Generator().manual_seed(seed),
    )
    assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2))
    with pytest.raises(ValueError, match="noise must be"):
        smooth_model_parameter_randomisation(model, x, y, saliency, n_samples=3, noise=torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="noise_magnitude"):
        smooth_model_parameter_randomisation(model, x, y, saliency, noise_magnitude=-1.0)
    with pytest.raises(ValueError, match="order"):
        efficient_model_parameter_randomisation(model, x, y, saliency, order="sideways")
