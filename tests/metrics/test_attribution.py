"""Attribution methods on cases with known answers: a linear model ``f(x) = W x + b`` has the constant input
gradient ``W[t]`` for class t, so every method has a closed form there; expected gradients also equals the shap
library used directly (one ``shap.GradientExplainer`` per class) on a nonlinear model, bit for bit.

Tolerances: the float64 cases compare a float64 computation rounded to float32 (``explain`` returns float32) with
the float64 closed form rounded to float32, so they differ by at most one float32 ulp (relative 2^-23, see
tests/metrics/rounding.py). shap computes in float32: its value is the mean of n_samples equal products
``(x - b) W``, each product and the sum rounded, within ``(n_samples + 3) u`` relative (u = 2^-24).
"""

import numpy as np
import pytest
import torch
from torch import nn

from metrics.attribution import explain
from tests.metrics.rounding import U32

ULP32 = 2 * U32


def linear(dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 4)).to(dtype)
    return model.eval()


def gradient_rows(model: nn.Module, target: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``W[target]`` reshaped to the input's shape: the linear model's input gradient of each example's class."""
    return model[1].weight.detach()[target].reshape(shape)


@pytest.fixture
def case():
    model = linear(torch.float64)
    x = torch.rand(5, 2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 3, 1, 3, 2])
    background = torch.rand(1, 2, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    return model, x, target, gradient_rows(model, target, x.shape), background


def close32(actual: torch.Tensor, expected: torch.Tensor, rtol: float = ULP32) -> None:
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual, expected.to(torch.float32), rtol=rtol, atol=1e-30)


def test_saliency_is_the_absolute_weight_row(case):
    model, x, target, w, _ = case
    close32(explain(model, x, target, "saliency"), w.abs())
    close32(explain(model, x, target, "saliency", abs=False), w)


def test_input_x_gradient_is_input_times_weights(case):
    model, x, target, w, _ = case
    close32(explain(model, x, target, "input_x_gradient"), x * w)


def test_integrated_gradients_from_black_is_exact_on_a_linear_model(case):
    model, x, target, w, _ = case
    attributions = explain(model, x, target, "integrated_gradients", baseline="black", n_steps=7)
    close32(attributions, x * w, rtol=4 * ULP32)  # the Riemann weights sum to 1 within float64 rounding


def test_integrated_gradients_from_uniform_baselines_is_complete_with_baselines_in_the_unit_box(case):
    model, x, target, w, _ = case
    attributions = explain(model, x, target, "integrated_gradients", n_trials=3, n_steps=5, seed=4).double()
    mean_baseline = x - attributions / w  # linear: attributions = (x - mean of the baselines) * W[t]
    assert bool((mean_baseline > 0).all() and (mean_baseline < 1).all())
    # a mean of 3 U[0,1] draws has sd 1/6 (one draw, or x itself if the attributions were 0: ~0.29); 90 values
    assert 0.12 < float(mean_baseline.std()) < 0.22
    again = explain(model, x, target, "integrated_gradients", n_trials=3, n_steps=5, seed=4)
    other = explain(model, x, target, "integrated_gradients", n_trials=3, n_steps=5, seed=5)
    assert torch.equal(again, attributions.float()) and not torch.equal(other, attributions.float())


def test_smoothgrad_of_a_constant_gradient_ignores_the_noise(case):
    model, x, target, w, _ = case
    close32(explain(model, x, target, "smoothgrad", nt_samples=6, seed=3), w.abs(), rtol=8 * ULP32)


def test_gradient_shap_with_one_background_image_is_the_difference_times_weights(case):
    model, x, target, w, background = case
    attributions = explain(model, x, target, "gradient_shap", background=background, n_samples=4, seed=0)
    close32(attributions, (x - background) * w, rtol=8 * ULP32)


def test_expected_gradients_with_one_background_image_is_the_difference_times_weights():
    model = linear(torch.float32)
    x = torch.rand(6, 2, 3, 3, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 3, 1, 3, 2, 0])
    background = torch.rand(1, 2, 3, 3, generator=torch.Generator().manual_seed(2))
    n_samples = 8
    attributions = explain(model, x, target, "expected_gradients", background=background, n_samples=n_samples)
    expected = (x.double() - background.double()) * gradient_rows(model, target, x.shape).double()
    close32(attributions, expected, rtol=(n_samples + 3) * U32)


class _Column(nn.Module):
    def __init__(self, model: nn.Module, column: int) -> None:
        super().__init__()
        self.model, self.column = model, column

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.column : self.column + 1]


def test_expected_gradients_equals_one_shap_explainer_per_class():
    import shap

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3)).eval()
    generator = torch.Generator().manual_seed(1)
    x, background = torch.rand(7, 1, 8, 8, generator=generator), torch.rand(10, 1, 8, 8, generator=generator)
    target = torch.tensor([2, 0, 2, 1, 0, 2, 1])
    state = np.random.get_state()
    ours = explain(model, x, target, "expected_gradients", background=background, n_samples=16, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), state, strict=True))  # global RNG untouched
    library = torch.zeros_like(x)
    for cls in (0, 1, 2):
        rows = (target == cls).nonzero().flatten()
        explainer = shap.GradientExplainer(_Column(model, cls), background, batch_size=200)
        values = explainer.shap_values(x[rows], nsamples=16, rseed=5)
        library[rows] = torch.as_tensor(np.asarray(values), dtype=x.dtype).reshape(x[rows].shape)
    assert torch.equal(ours, library)
