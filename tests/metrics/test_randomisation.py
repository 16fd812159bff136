"""Model parameter randomisation and the Spearman helper: against Quantus's MPRT and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import scipy.stats
import torch

from metrics.functional import (
    model_parameter_randomisation,
    model_parameter_randomisation_score,
    randomisable_layers,
    spearman,
)
from tests.metrics.conftest import ConstantLogits, quantus_saliency, run_quantus, saliency

TOL = 1e-5  # identical weights and gradients; Spearman of float32 maps in float64, observed ~1e-8


@pytest.mark.parametrize("order", ["top_down", "bottom_up"])
def test_matches_quantus_mprt(order, standard_model, images, standard_saliency):
    x, y, a = images[0][:4], images[1][:4], standard_saliency[:4]
    metric = quantus.MPRT(seed=42, layer_order=order, disable_warnings=True)
    q = run_quantus(metric, standard_model, x, y, a, explain_func=quantus_saliency)
    ours = model_parameter_randomisation(standard_model, x, y, saliency, order=order,
                                         generator=torch.Generator().manual_seed(43))  # fmt: skip
    layers = [name for name in q if name != "original"]
    assert layers == randomisable_layers(standard_model, order)
    np.testing.assert_allclose(ours.numpy(), np.array([q[name] for name in layers]).T, atol=TOL, rtol=0)
    # Summaries: "last" is Quantus's return_last_correlation; Quantus's return_average_correlation also averages
    # in its "original" entry (1.0), i.e. (1 + L * mean) / (L + 1).
    n_layers = len(layers)
    np.testing.assert_allclose(ours[:, -1].numpy(), metric.recompute_last_correlation_per_sample(), atol=TOL)
    np.testing.assert_allclose(((1 + n_layers * ours.mean(dim=1)) / (n_layers + 1)).numpy(),
                               metric.recompute_average_correlation_per_sample(), atol=TOL)  # fmt: skip


def _tiny_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3),
                               torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                               torch.nn.Linear(4, 10)).eval()  # fmt: skip


@pytest.mark.parametrize("order", ["top_down", "bottom_up", "independent"])
def test_model_and_global_rng_untouched_and_deterministic(order, images):
    model = _tiny_cnn()
    x, y = images[0][:3], images[1][:3]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    run = lambda seed, bs=256: model_parameter_randomisation(model, x, y, saliency, order=order,  # noqa: E731
                                                             batch_size=bs,
                                                             generator=torch.Generator().manual_seed(seed))  # fmt: skip
    first = run(1)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng)
    assert first.shape == (3, 3)
    assert torch.equal(first, run(1))
    assert not torch.equal(first, run(2))
    np.testing.assert_allclose(run(1, bs=2).numpy(), first.numpy(), atol=1e-5)  # batch-size float noise
    score = model_parameter_randomisation_score(model, x, y, saliency, order=order, reduction="last",
                                                generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert torch.equal(score, first[:, -1])
    # Cascading: once every layer is random, top-down and bottom-up reach the same fully random model.
    if order != "independent":
        other = "bottom_up" if order == "top_down" else "top_down"
        assert torch.allclose(first[:, -1], model_parameter_randomisation(
            model, x, y, saliency, order=other, generator=torch.Generator().manual_seed(1))[:, -1])


def test_spearman_matches_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    a = torch.randint(0, 6, (5, 40), generator=g).double()
    b = torch.randn(5, 40, generator=g, dtype=torch.float64)
    b[:, :10] = 0.0
    expected = np.array([scipy.stats.spearmanr(a[i], b[i])[0] for i in range(5)])
    np.testing.assert_allclose(spearman(a, b).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(spearman(a.float().reshape(5, 1, 5, 8), b.float().reshape(5, 1, 5, 8)).numpy(),
                               expected, atol=1e-6)  # fmt: skip
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
