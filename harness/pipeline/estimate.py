"""How long a run will take, estimated before its work starts from the model's measured cost.

The parent measures the model's cost on the worker that will run it (:func:`measure_cost`: the seconds per image of
a forward pass, and of a forward and backward pass to the input, timed by the parent's own clock on a batch of the
run's test images), then counts the image passes each stage makes with the run's settings (:func:`estimate`):

- **attack**: AutoAttack's sub-attacks (:data:`ATTACK_PASSES`: AutoAttack's own iterations, restarts, target
  classes and queries) on the points still robust when each starts. That is not known before the attack, so the
  attack is a range: from the first sub-attack on every image (every point broken by it: a standard model) to every
  sub-attack on every image (none broken). Then the fresh worker's re-classification and probes.
- **explain**: each method's attributions (:func:`explanation_passes`: the passes one map costs), on the explained
  images and the GridPG composites (4x the pixels), the perturbation curves (metrics.curves, 51 forward passes each),
  faithfulness correlation's subsets, the randomisation tests' re-explanations (:data:`LAYERS` re-initialised
  layers assumed: the parent never sees the model), the controls' curves, the bounds' occlusion and candidate curves;
- **featurevis**: inversion and generation steps (forward and backward each);
- and what does not depend on the model, in seconds measured on 2 CPU cores (:data:`OVERHEAD`): starting a worker,
  ROAD's imputation per pixel of a perturbed image, the parent's work per stored score (its bootstrap interval),
  scoring the feature visualisations (reference encoder, FID interval), each figure.

The estimate is shown before the attack, and each stage's real time beside it at the end (the run stores both);
``tests/harness/pipeline/test_estimate.py`` checks it against a real run of a small model (a ratio, loosely bounded).
It is an estimate: a shared machine, a model whose cost depends on its input, or a robust accuracy at either end of
the range make the real time differ.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from harness.pipeline.attack import classify
from harness.pipeline.budgets import PROBES, Budgets
from harness.pipeline.plan import RunPlan
from harness.report.wording import duration, log_name, span
from harness.worker.protocol import PointsRequest
from metrics.curves import CURVE_STEPS
from metrics.registry import METRICS
from metrics.suite import N_RECOGNITION, SuiteConfig

# AutoAttack's passes per attacked point, per sub-attack (pyautoattack 0.2.0's settings for the standard, plus and
# rand versions): (forward and backward, forward only). APGD: n_iter 100 steps + 1 per restart; APGD-T: 9 target
# classes; FAB: 100 iterations of a gradient step and a check per target (9 for FAB-T) or restart; Square: 5000
# queries (a robust point uses them all).
ATTACK_PASSES: dict[str, tuple[int, int]] = {
    "apgd-ce": (101, 1),
    "apgd-dlr": (101, 1),
    "apgd-t": (9 * 101, 9),
    "apgd-dlr-t": (9 * 101, 9),
    "fab": (100, 100),
    "fab-t": (9 * 100, 9 * 100),
    "square": (0, 5000),
}
EOT = 20  # the rand version's expectation over transformations: every APGD step averages 20 gradients
LAYERS = 8  # re-initialised layers the randomisation test is assumed to walk (a small CNN has 6 to 10)
GRID_AREA = 4  # a GridPG composite has 4 images' pixels
FAITHFULNESS_RUNS = 101  # faithfulness correlation: 100 perturbed subsets and the unperturbed image
# Seconds that do not depend on the model, measured on 2 CPU cores (bench/profile_run.py; README, Two commands).
OVERHEAD: dict[str, float] = {
    "worker": 4.0,  # starting a sandboxed worker (interpreter, torch, the sandbox) and loading the submission
    "road_pixel": 3e-7,  # ROAD's imputation per pixel (H x W) of a perturbed image, per curve step (28x28: 0.24 ms)
    "score": 0.05,  # the parent's work per stored score: validation, bootstrap interval, storage
    "featurevis": 10.0,  # scoring the feature visualisations: reference encoder, FID and its interval
    "figure": 0.25,  # drawing one of the run's figures (matplotlib; 4 figures of an n=8 run: 0.95 s)
}


@dataclass(frozen=True)
class Cost:
    """The model's measured seconds per image: a forward pass, and a forward and backward pass to the input."""

    forward: float
    backward: float


@dataclass
class Estimate:
    """Seconds per stage, as a (low, high) range (equal ends where the stage's work is known)."""

    stages: dict[str, tuple[float, float]] = field(default_factory=dict)
    first_attack: str | None = None  # the attack's first sub-attack: the low end assumes it breaks every point

    @property
    def total(self) -> tuple[float, float]:
        return sum(low for low, _ in self.stages.values()), sum(high for _, high in self.stages.values())

    def describe(self) -> str:
        """E.g. ``about 55 s if APGD-CE breaks every point, up to 2.3 min if none does (attack 12 s to 1.5 min,
        explain 30 s, featurevis 9 s, figures 6 s)``."""
        parts = [f"{stage} {span(*seconds)}" for stage, seconds in self.stages.items()]
        low, high = self.total
        if high > 1.1 * low and self.first_attack:
            total = (
                f"about {duration(low)} if {log_name(self.first_attack)} breaks every point, up to {duration(high)} "
                "if none is broken"
            )
        else:
            total = f"about {span(low, high)}"
        return f"{total} ({', '.join(parts)})"

    def to_json(self) -> dict[str, list[float]]:
        return {stage: [round(low, 1), round(high, 1)] for stage, (low, high) in self.stages.items()}


def measure_cost(channel, x: torch.Tensor, *, batch_size: int, num_classes: int, budgets: Budgets) -> Cost:
    """The seconds per image of the worker's forward pass and of its forward and backward pass, measured by the
    parent's clock on up to 64 of the run's test images ``x`` ``(n, C, H, W)`` (8 beyond 32x32 pixels): the
    difference between a batch of them and a single image, so the messages' fixed cost drops out (the best of two
    timings each, after a warm-up)."""
    k = 64 if x[0].numel() <= 3 * 32 * 32 else 8  # large images: a few are enough, and messages stay small
    points = x[: min(k, len(x))].numpy().astype(np.float32)
    size = min(batch_size, len(points))

    def forward(k: int) -> float:
        return _timed(lambda: classify(channel, points[:k], min(size, k), num_classes, budgets))

    def backward(k: int) -> float:
        request = PointsRequest(op="signs", x=points[:k], batch_size=min(size, k))
        return _timed(lambda: channel.request(request, budget=budgets.classify(k)))

    forward(1)  # warm-up: lazily built layers, the allocator
    per_image = []
    for timed in (forward, backward):
        one = min(timed(1) for _ in range(2))
        many = min(timed(len(points)) for _ in range(2))
        per_image.append(max(many - one, 0.0) / max(1, len(points) - 1) if len(points) > 1 else many)
    return Cost(*per_image)


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def estimate(plan: RunPlan, cost: Cost, *, attack: bool = True, workers: int = 2) -> Estimate:
    """The run's time per stage from ``cost`` (``attack``: whether the attack still has chunks to run; ``workers``:
    how many workers the run starts, the one already running included)."""
    r = plan.resolved
    out = Estimate()
    if attack:
        low, high = attack_passes(plan.attack.attacks, r.n_examples, rand=plan.attack.version == "rand")
        reclassify = cost.forward * (2 * PROBES + 2) * r.n_examples + cost.backward * r.n_examples
        start = OVERHEAD["worker"] * max(0, workers - 1) + cost.forward * r.n_examples  # fresh worker, clean preds
        out.first_attack = plan.attack.attacks[0] if plan.attack.attacks else None
        out.stages["attack"] = tuple(  # type: ignore[assignment]
            start + reclassify + cost.backward * b + cost.forward * f for b, f in (low, high)
        )
    if plan.suite is not None:
        _, h, w = plan.dataset.input_shape
        seconds = explain_seconds(plan.suite, r.n_examples, cost, pixels=h * w)
        out.stages["explain"] = (seconds, seconds)
    if plan.featurevis is not None:
        fv = plan.featurevis
        n_inv = min(fv.n_inversion, r.n_examples)
        passes = 2 * n_inv * (fv.inversion_steps + 1) + plan.dataset.num_classes * fv.per_class * fv.generation_steps
        seconds = cost.backward * passes + OVERHEAD["featurevis"]
        out.stages["featurevis"] = (seconds, seconds)
    figures = OVERHEAD["figure"] * (1 + (plan.suite is not None) + 2 * (plan.featurevis is not None))
    out.stages["figures"] = (figures, figures)
    return out


def attack_passes(attacks: tuple[str, ...], n: int, *, rand: bool = False) -> tuple[tuple[int, int], tuple[int, int]]:
    """(backward, forward) image passes of AutoAttack on n images: (the first sub-attack on all, every sub-attack on
    all). ``rand``: APGD's steps average EOT gradients.

    >>> attack_passes(("apgd-ce", "apgd-t"), 10)
    ((1010, 10), (10100, 100))
    """

    def passes(name: str) -> tuple[int, int]:
        backward, forward = ATTACK_PASSES.get(name, (101, 1))
        return (backward * EOT, forward) if rand and name.startswith("apgd") else (backward, forward)

    first = passes(attacks[0]) if attacks else (0, 0)
    every = [passes(a) for a in attacks]
    low = (first[0] * n, first[1] * n)
    high = (sum(b for b, _ in every) * n, sum(f for _, f in every) * n)
    return low, high


def explanation_passes(method: str, suite: SuiteConfig) -> int:
    """Forward and backward passes one attribution map of ``method`` costs with the suite's options.

    >>> explanation_passes("integrated_gradients", SuiteConfig()), explanation_passes("control_random", SuiteConfig())
    (128, 0)
    """
    from metrics.attribution import METHODS

    if METHODS.get(method).control:
        return 0
    options = suite.options_for(method)
    if method == "expected_gradients":
        return int(options.get("n_samples", 200))
    if method == "integrated_gradients":
        return int(options.get("n_trials", 10)) * int(options.get("n_steps", 50))
    if method == "smoothgrad":
        return int(options.get("nt_samples", 25))
    if method == "gradient_shap":
        return int(options.get("n_samples", 50))
    return 1


@dataclass(frozen=True)
class Passes:
    """Image passes of a stage: ``backward`` (forward and backward to the input), ``forward`` (forward only), and the
    seconds of its work that does not depend on the model (``seconds``)."""

    backward: int = 0
    forward: int = 0
    seconds: float = 0.0

    def __add__(self, other: Passes) -> Passes:
        return Passes(self.backward + other.backward, self.forward + other.forward, self.seconds + other.seconds)

    def cost(self, cost: Cost) -> float:
        return cost.backward * self.backward + cost.forward * self.forward + self.seconds


def explain_seconds(suite: SuiteConfig, n_examples: int, cost: Cost, *, pixels: int = 28 * 28) -> float:
    """The explain stage's seconds: attributions, curves, subsets, re-explanations, the bounds and the per-score
    overhead (``pixels``: H x W of an image)."""
    return explain_passes(suite, n_examples, pixels=pixels).cost(cost) + sum(
        _reliability_seconds(b, cost) for a, b in suite.pairs() if a == "reliability"
    )


def _curves(metrics: list[str]) -> set[tuple[str, str]]:
    """The (fill, curve) pairs the curve metrics among ``metrics`` need (metrics.curves; both scored outputs come
    from the same passes)."""
    needed = set()
    for name in metrics:
        curve = METRICS.get(name).curve if name in METRICS else None
        if curve is not None:
            needed |= {(curve.fill, which) for which in curve.curves}
    return needed


def _curve_passes(curves: set[tuple[str, str]], n: int, pixels: int) -> Passes:
    """Forward passes (and ROAD's imputation) of ``curves`` on n images of ``pixels`` (H x W)."""
    road = sum(1 for fill, _ in curves if fill == "road")
    imputation = road * CURVE_STEPS * n * pixels * OVERHEAD["road_pixel"]
    return Passes(forward=len(curves) * (CURVE_STEPS + 1) * n, seconds=imputation)


def explain_passes(suite: SuiteConfig, n_examples: int, *, layers: int = LAYERS, pixels: int = 28 * 28) -> Passes:
    """The explain stage's image passes (reliability apart: :func:`_reliability_seconds`), with ``layers``
    re-initialised layers for the randomisation test and ``pixels`` (H x W) per image for the bounds' occlusion.

    Per method and control: its maps (controls cost none), its own curves (metrics.curves: a method's MoRF, LeRF
    and insertion curves per fill), faithfulness correlation's subsets, the sanity re-explanations. Once per run: the
    random-order curves, and the bounds (metrics.bounds): single-pixel occlusion under both fills and each
    ceiling's candidate curves, and the floors' further random orders."""
    from metrics.bounds import BOUNDS, occlusion_patch
    from metrics.curves import FILLS, N_FLOOR_ORDERS

    n = min(suite.n_explain, n_examples)
    n_sanity = min(suite.n_sanity, n)
    grid = "gridpg" in suite.metrics
    total = Passes()
    if grid:
        total += Passes(forward=GRID_AREA * (max(N_RECOGNITION, suite.n_composites) + suite.n_composites))
    pairs = suite.pairs()
    shared: set[tuple[str, str]] = set()  # the run's random-order curves: (fill, "random j mode")
    for method in dict.fromkeys(m for m, _ in pairs if m != "reliability" and m not in BOUNDS):
        metrics = [b for a, b in pairs if a == method]
        e = explanation_passes(method, suite)
        backward = e * n + (GRID_AREA * 4 * suite.n_composites * e if grid else 0)
        forward, seconds = 0, OVERHEAD["score"] * len(metrics)
        curves = _curves(metrics)
        shared |= {(fill, "random 0 deletion") for fill, which in curves if which == "random"}
        total += _curve_passes({c for c in curves if c[1] != "random"}, n, pixels)
        if "faithfulness_correlation" in metrics:
            forward += FAITHFULNESS_RUNS * n
        if "randomisation" in metrics:
            backward += (layers + 1) * n_sanity * e
        if "randomisation_efficient" in metrics:
            backward += n_sanity * e
        for name in ("infidelity", "infidelity_patch"):
            if name in metrics:
                forward += 50 * n
        if "max_sensitivity" in metrics:
            backward += 10 * n_sanity * e
        total += Passes(backward, forward, seconds)
    bounded = [b for a, b in pairs if a in BOUNDS]
    if bounded:
        side = int(math.isqrt(pixels))
        patch = occlusion_patch(side, side) if side * side == pixels else 1
        features = pixels // (patch * patch)
        total += Passes(forward=len(FILLS) * n * (features + 1), seconds=OVERHEAD["score"] * len(bounded))
        candidates = set()
        for name in dict.fromkeys(bounded):
            curve = METRICS.get(name).curve
            if len(curve.curves) == 1:  # a single-curve metric's floor: further random orders
                mode = "insertion" if curve.curves[0] == "insertion" else "deletion"
                shared |= {(curve.fill, f"random {j} {mode}") for j in range(N_FLOOR_ORDERS)}
            for order_fill in FILLS:
                for which in curve.curves:
                    if which == "random":
                        shared.add((curve.fill, "random 0 deletion"))
                    else:
                        candidates.add((curve.fill, f"{order_fill} {curve.score} {which}"))
        total += _curve_passes(candidates, n, pixels)
    return total + _curve_passes(shared, n, pixels)


def _reliability_seconds(metric: str, cost: Cost) -> float:
    """MetaQuantus's reliability of one metric: 2 iterations x 5 perturbations of the model and of the input, each
    re-explaining 16 images with saliency and a cheap integrated gradients and re-scoring them."""
    from metrics.suite_reliability import ITERATIONS, N_IMAGES, PERTURBATIONS

    explained = 4 * ITERATIONS * PERTURBATIONS * N_IMAGES
    scored = (CURVE_STEPS + 1) * 2 if METRICS.get(metric).family == "faithfulness" else 1
    return explained * (17 * cost.backward + scored * cost.forward) + OVERHEAD["score"]


def sanity(seconds: float) -> float:
    """A stage time that can be shown (NaN and negative become 0)."""
    return 0.0 if not math.isfinite(seconds) or seconds < 0 else seconds
