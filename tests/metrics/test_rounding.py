"""The rounding-error helpers that size the metric tests' tolerances (tests/metrics/rounding.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from metrics.functional._stats import pearson
from tests.metrics.rounding import (
    U32,
    U64,
    Bound,
    Float64,
    PerImage,
    logit_error_bound,
    metric_score_roundoff,
    pearson_error_bound,
    probability_error_bound,
    probability_errors,
)


@pytest.mark.parametrize("which", ["standard", "robust"])
def test_logit_bound_covers_float32_and_float64_evaluations(which, request, images):
    model = request.getfixturevalue(f"{which}_model")
    x = images[0]
    b32, b64 = logit_error_bound(model, (1, 28, 28), u=U32), logit_error_bound(model, (1, 28, 28))
    with torch.no_grad():
        exact = Float64(model)(x)  # within b64.error of the exact logits
        batched, single = model(x).double(), torch.cat([model(x[i : i + 1]) for i in range(len(x))]).double()
    assert bool((exact.abs() <= b64.magnitude).all())
    for computed in (batched, single):
        assert bool(((computed - exact).abs() <= b32.error + b64.error).all())
    # float32 worst-case bounds are useless for a CNN (the reason the tests use float64 models), float64 ones are
    # small enough to test with: ~1e-6 for any input in [0, 1].
    assert float(b32.error.max()) > 1.0
    assert float(b64.error.max()) < 1e-5
    assert probability_error_bound(b64) < 1e-5


def test_logit_bound_rejects_models_it_cannot_follow():
    with pytest.raises(TypeError, match="does not support"):
        logit_error_bound(nn.Sequential(nn.Flatten(), nn.Linear(4, 2), nn.Tanh()), (1, 2, 2))

    class Reordered(nn.Module):  # modules registered in another order than they run
        def __init__(self) -> None:
            super().__init__()
            self.second = nn.Linear(3, 2)
            self.first = nn.Linear(4, 3)

        def forward(self, x):
            return self.second(self.first(x.flatten(1)))

    with pytest.raises(TypeError, match="registration order"):
        logit_error_bound(nn.Sequential(nn.Flatten(), Reordered()), (1, 2, 2))


def test_pearson_bound_holds_and_is_not_vacuous():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 12, generator=g, dtype=torch.float64), torch.randn(50, 12, generator=g, dtype=torch.float64)
    da, db = 1e-3 * a.abs() + 1e-4, 1e-3 * b.abs() + 1e-4
    bound = pearson_error_bound(a, da, b, db)
    worst = torch.zeros(50, dtype=torch.float64)
    for _ in range(200):
        sa = torch.randint(0, 2, a.shape, generator=g) * 2 - 1
        sb = torch.randint(0, 2, b.shape, generator=g) * 2 - 1
        worst = torch.maximum(worst, (pearson(a + sa * da, b + sb * db) - pearson(a, b)).abs())
    assert bool((worst <= bound).all())
    assert bool((worst >= bound / 20).all())  # random signs already reach 5% of it
    assert bool(torch.isinf(pearson_error_bound(torch.ones(1, 4), 0.0, torch.arange(4.0)[None], 0.0)).all())


def test_probability_errors_cover_logit_perturbations():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(100, 10, generator=g, dtype=torch.float64) * 8
    e = 1e-3
    bound = probability_errors(logits.softmax(-1), Bound(logits.abs().max() * torch.ones(10), e * torch.ones(10)))
    for _ in range(20):
        shifted = logits + e * (2 * torch.rand(logits.shape, generator=g, dtype=torch.float64) - 1)
        assert bool(((shifted.softmax(-1) - logits.softmax(-1)).abs() <= bound).all())


def test_per_image_model_outputs_do_not_depend_on_the_batch(standard_model, images):
    x = images[0][:7]
    model = PerImage(standard_model)
    with torch.no_grad():
        whole = model(x)
        parts = torch.cat([model(x[:3]), model(x[3:4]), model(x[4:])])
    assert torch.equal(whole, parts)
    assert metric_score_roundoff() in (U32, U64)
