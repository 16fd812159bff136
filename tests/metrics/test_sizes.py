"""The interpretability suite at CIFAR (3x32x32) and ImageNet (3x224x224) input sizes, on small seeded models.

The models see colour: class k is the corner ``c_k`` of the RGB cube (8 classes), and a 1x1 convolution with a
ReLU scores each pixel's closeness to every corner, so the models also recognise the 2x2 GridPG composites
(each cell class keeps a quarter of its score, other classes get none) and GridPG is computed, not skipped.
The rest of each model (the linear head) is randomly initialised from a fixed seed.

Cost at 224x224 (measured on 2 busy CPU cores, this tiny model, per explained image and method): infidelity
replaces its 4x4 patches one by one, so 3137 forward passes (about 17 s), and max_sensitivity explains 200
noisy copies (10 to 25 s): the 224 test runs them with 56x56 patches and 4 noisy copies, which exercises the
same code at that size.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import pytest
import torch
from torch import nn

import metrics.curves
import metrics.functional
import metrics.suite as suite
from metrics.registry import METRICS, attribution_metrics
from metrics.suite import Attributions, MetricScore, SuiteConfig, iter_suite

CORNERS = torch.tensor(list(itertools.product((0.0, 1.0), repeat=3)))  # (8, 3)
K = len(CORNERS)
METRIC_NAMES = tuple(name for name in attribution_metrics() if "mask" not in METRICS.get(name).needs)
CONFIG = SuiteConfig(
    methods=("saliency", "integrated_gradients"),
    metrics=METRIC_NAMES,
    n_explain=4,
    n_sanity=2,
    n_composites=2,
    batch_size=16,
    method_options=(("integrated_gradients", "n_trials", 1), ("integrated_gradients", "n_steps", 4)),
)


@pytest.fixture(autouse=True)
def _one_thread():
    """The models are tiny: a second intra-op thread only adds synchronisation (10x slower on busy cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _corner_scores() -> nn.Sequential:
    """Per pixel, ``relu(w_k . p + b_k)``: 0.5 at corner k, 0 at every other corner (and within +-0.1 of it)."""
    conv = nn.Conv2d(3, K, kernel_size=1)
    with torch.no_grad():
        conv.weight.copy_((2 * CORNERS - 1).view(K, 3, 1, 1))
        conv.bias.copy_(0.5 - CORNERS.sum(1))
    return nn.Sequential(conv, nn.ReLU())


def _head(in_features: int, seed: int, pool: int = 1) -> nn.Linear:
    """A seeded random linear layer plus a class-preserving part (``pool`` = pixels averaged per feature)."""
    head = nn.Linear(in_features, K)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        head.weight.copy_(torch.randn(K, in_features, generator=generator) * 0.05 / pool)
        head.weight += torch.kron(torch.eye(K) * 20.0, torch.ones(1, pool) / pool)
        head.bias.copy_(torch.randn(K, generator=generator) * 0.05)
    return head


class Positional(nn.Module):
    """Scales each pixel's features by a fixed weight in [0.5, 1.5] that varies over the image (for any size), so
    that gradients differ between pixels: a position-blind model has constant saliency maps, which the suite
    rightly reports as degenerate."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = torch.cos(torch.arange(x.shape[2], dtype=x.dtype) / 3).view(-1, 1)
        cols = torch.cos(torch.arange(x.shape[3], dtype=x.dtype) / 5).view(1, -1)
        return x * (1 + 0.5 * rows * cols)


class PoolView(nn.Module):
    """``avg_pool2d(side)`` then ``view(-1, C)``, as RobustBench's WideResNets: 4 rows for a 2x-size input."""

    def __init__(self, side: int) -> None:
        super().__init__()
        self.side = side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = nn.functional.avg_pool2d(x, self.side)
        return out.view(-1, out.shape[1])


def make_model(kind: str, side: int, seed: int = 0) -> nn.Module:
    """``gap``: fully convolutional (any size); ``flatten``: a fixed-size flattened feature map (rejects 2x);
    ``pool_view``: fixed pooling then view (gives the wrong number of rows at 2x)."""
    torch.manual_seed(seed)
    if kind == "gap":
        layers = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), _head(K, seed)]
    elif kind == "flatten":
        layers = [nn.Flatten(), _head(K * side * side, seed, pool=side * side)]
    elif kind == "pool_view":
        layers = [PoolView(side), _head(K, seed)]
    else:
        raise ValueError(kind)
    return nn.Sequential(*_corner_scores(), Positional(), *layers).eval()


def make_images(side: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One image per class: its corner colour plus U(-0.1, 0.1) noise, clipped to [0, 1]; (8, 3, side, side)."""
    generator = torch.Generator().manual_seed(seed)
    noise = (torch.rand(K, 3, side, side, generator=generator) - 0.5) * 0.2
    return (CORNERS.view(K, 3, 1, 1) + noise).clamp(0, 1), torch.arange(K)


def expected_count(name: str, config: SuiteConfig) -> int:
    needs = METRICS.get(name).needs
    if "grid" in needs:
        return config.n_composites * 4  # one value per (composite, cell)
    return config.n_sanity if "explain" in needs else config.n_explain


def run(model: nn.Module, side: int, config: SuiteConfig) -> tuple[dict[str, Attributions], list[MetricScore]]:
    x, y = make_images(side)
    with torch.no_grad():
        clean_pred = model(x).argmax(1)
    assert torch.equal(clean_pred, y), "the test model should classify its colour images correctly"
    items = list(
        iter_suite(
            model,
            x,
            y,
            clean_pred,
            config=config,
            num_classes=K,
            has_object_masks=False,
            background=None,
            device=torch.device("cpu"),
            progress=False,
        )
    )
    attributions = {item.method: item for item in items if isinstance(item, Attributions)}
    return attributions, [item for item in items if isinstance(item, MetricScore)]


def check_scores(scores: list[MetricScore], config: SuiteConfig) -> None:
    assert {(s.method, s.metric) for s in scores} == set(config.pairs())  # methods x metrics, controls x headline
    for score in scores:
        where = f"{score.method}/{score.metric}: {score.details}"
        assert score.applicable and "dropped_non_finite" not in score.details, where
        if score.metric == "gridpg":  # the (composite, cell) rows whose class the model ranks in its top 4
            assert 0 < len(score.values) <= expected_count(score.metric, config), where
            assert len(score.details["rows"]) == len(score.values), where
        else:
            assert len(score.values) == expected_count(score.metric, config), where
        assert all(math.isfinite(v) for v in score.values), where


def test_suite_at_32x32():
    attributions, scores = run(make_model("gap", 32), 32, CONFIG)
    check_scores(scores, CONFIG)
    for method in CONFIG.methods:
        assert attributions[method].main.shape == (CONFIG.n_explain, 3, 32, 32)


@pytest.mark.parametrize(("kind", "native"), [("gap", True), ("flatten", False), ("pool_view", False)])
def test_gridpg_composites_native_or_downscaled_at_32x32(kind, native):
    config = dataclasses.replace(CONFIG, metrics=("gridpg",))
    attributions, scores = run(make_model(kind, 32), 32, config)
    check_scores(scores, config)
    side = 64 if native else 32  # 2x2 composites of 32x32 images: native 64x64, else downscaled to 32x32
    for method in config.methods:
        assert attributions[method].grid.shape == (config.n_composites * 4, 3, side, side)
    for score in scores:
        assert score.details["native"] is native and score.details["recognition"] == 4.0


@pytest.mark.slow
def test_suite_at_224x224(monkeypatch):
    # Recognition is measured on N_RECOGNITION = 200 composites, 448x448 here (0.5 GB): 8 are enough for the test.
    monkeypatch.setattr(suite, "N_RECOGNITION", 8)
    monkeypatch.setattr(
        metrics.functional, "infidelity", functools.partial(metrics.functional.infidelity, patch_size=56)
    )
    monkeypatch.setattr(
        metrics.functional, "max_sensitivity", functools.partial(metrics.functional.max_sensitivity, n_samples=4)
    )
    monkeypatch.setattr(
        metrics.functional,
        "infidelity_gaussian",
        functools.partial(metrics.functional.infidelity_gaussian, n_samples=4),
    )
    monkeypatch.setattr(metrics.curves, "CURVE_STEPS", 8)  # curves (both fills) with 8 steps: sizes, not values
    config = dataclasses.replace(CONFIG, n_explain=1, n_sanity=1, n_composites=1, controls=())
    attributions, scores = run(make_model("gap", 224), 224, config)
    check_scores(scores, config)
    for method in config.methods:
        assert attributions[method].main.shape == (config.n_explain, 3, 224, 224)
        assert attributions[method].grid.shape == (config.n_composites * 4, 3, 448, 448)
