"""harness.pipeline.estimate: the passes it counts are the passes the suite makes (counted on a real model), and
its estimate of a real run is within a loose ratio of the run's time."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.core.config import RunConfig
from harness.pipeline.estimate import OVERHEAD, Cost, Estimate, attack_passes, explain_passes
from harness.pipeline.evaluate import evaluate
from metrics.suite import SuiteConfig, run_suite
from tests.conftest import SUBMISSIONS


class Counted(nn.Module):
    """Counts the images of every forward pass: with gradients to the input (a backward follows) or without. The
    counts are class attributes, so the randomisation tests' deep copies count too."""

    backward = 0
    forward_only = 0

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            Counted.backward += len(x)
        else:
            Counted.forward_only += len(x)
        return self.model(x)


def test_the_counted_passes_are_the_passes_the_suite_makes(fmnist_test):
    x, y = fmnist_test
    torch.manual_seed(0)
    inner = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)
    )
    model = Counted(inner).eval()
    suite = SuiteConfig(
        methods=("saliency", "integrated_gradients"),
        metrics=("abpc", "deletion_relative", "faithfulness_correlation", "randomisation", "randomisation_efficient"),
        n_explain=6,
        n_sanity=3,
        method_options=(("integrated_gradients", "n_trials", 1), ("integrated_gradients", "n_steps", 4)),
    )
    Counted.backward = Counted.forward_only = 0
    run_suite(
        model,
        x[:6],
        y[:6],
        y[:6],
        config=suite,
        num_classes=10,
        has_object_masks=True,
        background=None,
        device=torch.device("cpu"),
        progress=False,
    )
    counted = explain_passes(suite, 6, layers=2)  # the convolution and the linear layer are re-initialised
    assert counted.backward == Counted.backward
    assert counted.forward == pytest.approx(Counted.forward_only, rel=0.05)
    assert counted.seconds == pytest.approx(OVERHEAD["score"] * len(suite.pairs()))


def test_attack_ranges_and_how_an_estimate_reads():
    assert attack_passes(("apgd-ce", "apgd-t", "fab-t", "square"), 2) == ((202, 2), (2 * 1910, 2 * 5910))
    rand_low, _ = attack_passes(("apgd-ce",), 1, rand=True)
    assert rand_low == (20 * 101, 1)
    estimate = Estimate({"attack": (10.0, 600.0), "explain": (30.0, 30.0)}, first_attack="apgd-ce")
    assert estimate.total == (40.0, 630.0)
    assert estimate.describe() == (
        "about 40 s if APGD-CE breaks every point, up to 10.5 min if none is broken (attack 10 s to 10.0 min, "
        "explain 30 s)"
    )
    assert Estimate({"explain": (30.0, 31.0)}).describe() == "about 30 s (explain 30 s)"


@pytest.mark.slow
def test_the_estimate_is_near_the_real_time_of_a_small_run(tmp_path, data_dir):
    """A small CNN, 8 images, APGD-CE (so the estimate is one number), a small suite, figures: the stages the
    estimate covers took between a third and three times what it said."""
    config = RunConfig(
        model=SUBMISSIONS / "fmnist_standard.py",
        n_examples=8,
        attack="apgd-ce",
        methods="saliency,integrated_gradients",
        metrics="abpc,relevance_mass_ratio,randomisation,sparseness",
        n_sanity=2,
        n_composites=2,
        method_options=("integrated_gradients.n_trials=1", "integrated_gradients.n_steps=8"),
        featurevis=False,
        progress=False,
        db=f"sqlite:///{tmp_path / 'r.db'}",
        data_dir=data_dir,
    )
    lines = []
    summary = evaluate(config, echo=lines.append)
    estimate = summary.estimate
    assert estimate is not None and set(estimate.stages) == {"attack", "explain", "figures"}
    assert any(line.startswith(f"run {summary.run_id}: estimated time about ") for line in lines)
    assert lines[0].startswith("robint-bench run: fmnist_standard") and "estimated" in lines[9]  # header first
    low, high = estimate.total
    real = sum(summary.timings[stage] for stage in estimate.stages)
    print(f"estimated {estimate.stages}, took {real:.1f} s: {summary.timings}")
    assert low / 3 <= real <= 3 * high
    assert isinstance(Cost(1.0, 2.0).forward, float)
