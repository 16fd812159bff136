"""Degenerate attribution maps: detection codes, the suite's per-metric rule (values dropped, n/a with a reason),
and a gradient-masked model (zero gradients everywhere) run through the suite."""

from __future__ import annotations

import math

import pytest
import torch
from captum.attr import Saliency
from torch import nn

from metrics.functional import Degenerate, count_degenerate, degenerate_maps
from metrics.registry import METRICS, UNDEFINED_ON_CONSTANT, GridInputs, MetricContext
from metrics.suite import DEFAULT_METRICS, SuiteConfig, _score, run_suite
from tests.metrics.conftest import LinearScore

NAN, INF = float("nan"), float("inf")


def test_codes_and_counts():
    maps = torch.tensor(
        [
            [[0.0, 1.0], [0.0, 0.0]],  # ok
            [[0.0, -0.0], [0.0, 0.0]],  # zero (-0 == 0)
            [[2.5, 2.5], [2.5, 2.5]],  # constant
            [[-1e-30, -1e-30], [-1e-30, -1e-30]],  # constant (tiny, not zero)
            [[0.0, 0.0], [0.0, NAN]],  # non-finite (checked first)
            [[INF, INF], [INF, INF]],  # non-finite, not "constant"
            [[1e-30, 0.0], [0.0, 0.0]],  # ok: tiny but different values
        ]
    ).unsqueeze(1)
    codes = degenerate_maps(maps)
    assert codes.tolist() == [0, 1, 2, 2, 3, 3, 0]
    assert [Degenerate(c).name for c in codes.tolist()[:5]] == ["ok", "zero", "constant", "constant", "non_finite"]
    assert count_degenerate(codes) == {"zero": 1, "constant": 2, "non_finite": 2}
    # all channels count: equal within each channel but different across channels is not constant
    assert degenerate_maps(torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)], dim=1)).tolist() == [0]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="attributions"):
        degenerate_maps(torch.zeros(3, dtype=torch.float32))
    with pytest.raises(ValueError, match="attributions"):
        degenerate_maps(torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="N >= 1"):
        degenerate_maps(torch.zeros(0, 4))


def test_rule_is_a_property_of_every_metric():
    for name, spec in METRICS.items():
        assert {"zero", "non_finite"} <= spec.undefined_on <= {"zero", "constant", "non_finite"}, name
    for name in ("randomisation", "faithfulness_correlation", "abpc", "deletion_auc", "insertion_auc"):
        assert METRICS.get(name).undefined_on == UNDEFINED_ON_CONSTANT
    for name in ("sparseness", "relevance_mass_ratio", "pointing_game", "gridpg"):
        assert "constant" not in METRICS.get(name).undefined_on


def _hand_context():
    """Four 28x28 images; object mask = top-left 14x14 block (share 1/4); maps: ok, zero, constant 0.5, NaN.
    The ok map is 3 at pixel (0, 0) (in the mask) and 1 at (27, 27), 0 elsewhere."""
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    masks = torch.zeros(4, 1, 28, 28, dtype=torch.bool)
    masks[:, :, :14, :14] = True
    a = torch.zeros(4, 1, 28, 28)
    a[0, 0, 0, 0], a[0, 0, 27, 27] = 3.0, 1.0
    a[2] = 0.5
    a[3, 0, 5, 5] = NAN
    model = LinearScore(torch.linspace(-1, 1, 784).reshape(1, 1, 28, 28))
    target = torch.zeros(4, dtype=torch.int64)
    return MetricContext(model=model, x=x, target=target, attributions=a, explain=None, masks=masks)


def test_score_drops_degenerate_images_by_rule():
    ctx = _hand_context()
    counts = {"zero": 1, "constant": 1, "non_finite": 1}
    # Gini of the ok map (n = 784; sorted |a|: 782 zeros, 1, 3): (781 * 1 + 783 * 3) / (784 * 4).
    gini = (781 * 1 + 783 * 3) / (784 * 4)
    s = _score("sparseness", "m", ctx, None, None)
    assert s.values == pytest.approx([gini, 0.0], abs=1e-6)  # constant: defined (Gini 0); zero, NaN dropped
    assert s.details["degenerate"] == counts
    assert s.details["dropped_degenerate"] == {"zero": 1, "constant": 0, "non_finite": 1}
    assert "undefined on zero or non-finite" in s.details["degenerate_rule"]
    # relevance mass ratio: ok map 3/4 of the positive mass on a 1/4 mask -> 3; constant map -> chance 1.
    s = _score("relevance_mass_ratio", "m", ctx, None, None)
    assert s.values == pytest.approx([3.0, 1.0], abs=1e-6)
    # faithfulness correlation: undefined on constant maps too, so only the ok image is left
    s = _score("faithfulness_correlation", "m", ctx, None, None)
    assert len(s.values) == 1 and -1 <= s.values[0] <= 1
    assert s.details["dropped_degenerate"] == counts and s.applicable


def test_score_on_grid_maps():
    g = GridInputs(
        images=torch.rand(2, 1, 8, 8),
        target=torch.zeros(2, dtype=torch.int64),
        cell=torch.tensor([0, 1]),
        recognition=torch.ones(1),
        chance=0.25,
        native=True,
    )
    g.attributions = torch.zeros(2, 1, 8, 8)
    g.attributions[0, 0, 0, 0], g.attributions[0, 0, 7, 7] = 3.0, 1.0  # 3/4 of positive mass in cell 0
    ctx = _hand_context()
    ctx.grid = g
    s = _score("gridpg", "m", ctx, g, None)
    assert s.values == pytest.approx([0.75])
    assert s.details["degenerate_grid"] == {"zero": 1, "constant": 0, "non_finite": 0}
    assert s.details["dropped_degenerate"] == {"zero": 1, "constant": 0, "non_finite": 0}


def test_explain_metric_runs_on_finite_images_only():
    """randomisation re-explains the images: the NaN image is left out (no ValueError), the zero one dropped."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 2))
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    x[2], x[3] = 0.0, 1.0
    target = torch.zeros(4, dtype=torch.int64)

    def explain(m, xb, t):
        a = Saliency(m).attribute(xb, target=t).detach() * (xb.flatten(1).sum(1) > 0).view(-1, 1, 1, 1)
        return torch.where((xb == 1).flatten(1).all(1).view(-1, 1, 1, 1), NAN, a)

    ctx = MetricContext(
        model=model, x=x, target=target, attributions=explain(model, x, target), explain=explain, n_sanity=4
    )
    s = _score("randomisation", "m", ctx, None, None)
    assert len(s.values) == 2 and all(-1 <= v <= 1 for v in s.values)
    assert s.details["dropped_degenerate"] == {"zero": 1, "constant": 0, "non_finite": 1}


class Quantise(nn.Module):
    """``round(x * 255) / 255``: the forward pass of 8-bit input quantisation, whose gradient is zero everywhere."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 255) / 255


def _small_net(masked: bool) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10)]
    return nn.Sequential(*([Quantise()] if masked else []), *layers).eval()


@pytest.mark.parametrize("masked", [True, False])
def test_gradient_masked_model_gets_no_score(masked, fmnist_test):
    x, y = fmnist_test[0][:6], fmnist_test[1][:6]
    config = SuiteConfig(
        methods=("saliency", "integrated_gradients"),
        metrics=DEFAULT_METRICS,
        n_explain=6,
        n_sanity=3,
        method_options=(("integrated_gradients", "n_trials", 1), ("integrated_gradients", "n_steps", 4)),
        controls=(),  # the controls are model-independent: they have no degenerate maps to test here
        bounds=False,  # floor and ceiling come from curves, not maps (tests/metrics/test_bounds.py)
    )
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        scores = run_suite(
            _small_net(masked),
            x,
            y,
            y,
            config=config,
            num_classes=10,
            has_object_masks=True,
            background=None,
            device=torch.device("cpu"),
            progress=False,
        )
    finally:
        torch.set_num_threads(before)
    assert len(scores) == 2 * len(DEFAULT_METRICS)
    by = {(s.method, s.metric): s for s in scores}
    for s in scores:
        assert s.details["degenerate"] == {"zero": 6 if masked else 0, "constant": 0, "non_finite": 0}
    for method in ("saliency", "integrated_gradients"):
        for metric in ("randomisation", "faithfulness_correlation"):
            s = by[method, metric]
            if masked:
                assert not s.applicable and s.values == []
                assert s.details["not_applicable"].startswith(f"{metric} is undefined on zero")
                assert "(zero: 6)" in s.details["not_applicable"]
            else:
                assert s.applicable and all(math.isfinite(v) for v in s.values)
                assert len(s.values) == (3 if metric == "randomisation" else 6)
    if masked:  # every metric is undefined on zero maps: a gradient-masked model tops no column
        assert not any(s.applicable for s in scores)
