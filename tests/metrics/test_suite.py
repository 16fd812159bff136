"""The suite's pairs (methods, controls and the bounds) and the bound rows it yields: once per run and metric, on every
image, equal to the bounds of the run's own draws; the methods' curve scores keep the draws they had."""

from __future__ import annotations

import numpy as np
import torch

import metrics.curves
from metrics.bounds import BOUNDS, ceiling, floor
from metrics.controls import CONTROLS
from metrics.curves import RunInputs, seeded_generator
from metrics.functional import abpc, deletion_auc_relative
from metrics.suite import DEFAULT_METRICS, MetricScore, SuiteConfig, controlled, iter_suite


def test_pairs_add_controls_and_bounds():
    config = SuiteConfig()
    pairs = config.pairs()
    assert len(pairs) == len(set(pairs))
    curve_metrics = [m for m in DEFAULT_METRICS if m.startswith(("deletion", "insertion", "abpc"))]
    assert len(curve_metrics) == 14  # 7 metrics x 2 scored outputs
    for which in BOUNDS:
        assert [b for a, b in pairs if a == which] == curve_metrics
    for control in CONTROLS:
        scored = {b for a, b in pairs if a == control}
        assert {"abpc", "abpc_logit", "abpc_road_logit", "deletion_relative_road_logit", "gridpg"} <= scored
        assert {"relevance_mass_ratio", "pointing_game", "sparseness", "randomisation"} <= scored
        assert not scored & {"deletion_auc", "insertion_auc", "faithfulness_correlation"}
    assert controlled("abpc_logit") and controlled("pointing_game") and not controlled("deletion_auc_logit")
    narrow = SuiteConfig(metrics=("sparseness", "abpc_road"), controls=())
    assert narrow.pairs() == [(m, b) for m in narrow.methods for b in narrow.metrics] + [
        ("bound_floor", "abpc_road"),
        ("bound_ceiling", "abpc_road"),
    ]


def test_bound_rows_once_per_run_on_every_image(standard_model, fmnist_test, monkeypatch):
    monkeypatch.setattr(metrics.curves, "CURVE_STEPS", 10)
    x, y = fmnist_test
    with torch.no_grad():
        pred = standard_model(x).argmax(1)
    config = SuiteConfig(
        methods=("saliency", "input_x_gradient"),
        metrics=("abpc", "deletion_relative_logit", "sparseness"),
        controls=("control_inverse",),
        n_explain=3,
        seed=4,
    )
    items = list(
        iter_suite(
            standard_model,
            x,
            y,
            pred,
            config=config,
            num_classes=10,
            has_object_masks=True,
            background=None,
            device=torch.device("cpu"),
            progress=False,
        )
    )
    scores = {(s.method, s.metric): s for s in items if isinstance(s, MetricScore)}
    assert set(scores) == set(config.pairs())
    run = RunInputs(standard_model, x[:3], y[:3], seed=4)
    for name in ("abpc", "deletion_relative_logit"):
        np.testing.assert_allclose(scores["bound_floor", name].values, floor(run, name).double().numpy())
        np.testing.assert_allclose(scores["bound_ceiling", name].values, ceiling(run, name).double().numpy())
        for which in BOUNDS:
            details = scores[which, name].details
            assert details["index"] == [0, 1, 2] and "occlusion" in details["settings"]["ceiling"]
    # a method's scores keep the documented draws: U[0,1] baseline of the generator "baseline", random order of
    # "random_order" (shared by every method, computed once per run)
    base = torch.rand(x[:3].shape, generator=seeded_generator(4, "baseline"))
    a = next(i for i in items if getattr(i, "method", "") == "saliency" and not isinstance(i, MetricScore)).main
    expected = abpc(standard_model, x[:3], a, y[:3], baseline=base, n_steps=10)
    np.testing.assert_allclose(scores["saliency", "abpc"].values, expected.double().numpy(), atol=1e-6)
    relative = deletion_auc_relative(
        standard_model,
        x[:3],
        a,
        y[:3],
        baseline=base,
        n_steps=10,
        score="logit",
        generator=seeded_generator(4, "random_order"),
    )
    np.testing.assert_allclose(
        scores["saliency", "deletion_relative_logit"].values, relative.double().numpy(), atol=1e-5
    )
