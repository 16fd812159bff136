"""Metric reliability as MetaQuantus measures it (Hedström et al., "The Meta-Evaluation Problem in Explainable AI",
TMLR 2023; package ``metaquantus`` 0.0.5): does a metric's score stay put under minor perturbations of the model
or input that keep the predictions (noise resilience, NR), and move under disruptive ones that change them
(adversary reactivity, AR)?

Two perturbation tests, each with a minor (NR) and a disruptive (AR) perturbation, ``I`` iterations of ``K``
perturbations each (MetaQuantus's defaults for (Fashion-)MNIST, ``MetaEvaluation`` and ``setup_test_suite``):

- Model Perturbation Test (MPT): a deep copy of the model with every parameter multiplied by N(1, sigma) noise,
  sigma = 0.001 (NR) or 2.0 (AR) (ImageNet: 0.5). The copy explains x and the metric scores it with the copy.
- Input Perturbation Test (IPT): ``x_hat = max(x + U[-eps, eps], min(x))`` (``min`` over the whole batch, as
  MetaQuantus clips), eps = 0.001 (NR) or 5.0 (AR); the metric scores with the original model on x_hat. As in
  MetaQuantus 0.0.5 the explanations are those of the *unperturbed* input (``input_explanations="original"``), so
  a metric of the attributions alone cannot move here; ``"perturbed"`` explains x_hat instead.

Only images whose prediction (argmax of the model's output) is unchanged count for NR, only those whose prediction
changed count for AR; all scores are still computed. With L explanation methods, per iteration i and perturbation
k (q: unperturbed scores ``(L, N)``, q_hat: perturbed, both restricted to the counted images):

- ``IAC_NR = p``, ``IAC_AR = 1 - p`` with p the two-sided Wilcoxon signed-rank p-value of q vs q_hat
  (``scipy.stats.wilcoxon``, ``zero_method="zsplit"``; 0.0 if scipy raises, NaN if no image counts), per method.
- ``IEC_NR``: share of (method position, image) pairs where the ordering of the L methods by score
  (``argsort`` over methods, ties by method order) is the same for q and q_hat.
- ``IEC_AR``: share of (method, image) pairs whose score got worse: ``q_hat < q`` if higher is better, else
  ``q_hat > q``. NaN if no image counts.

Each criterion is averaged over methods, perturbations and iterations; ``MC = mean(IAC_NR, IAC_AR, IEC_NR,
IEC_AR)`` per test; 1 is ideal for each. :func:`reliability` also reports their means over the tests run. As in
MetaQuantus, one perturbation that keeps no image makes its criterion (and MC) NaN; the raw values show which.

Differences from running MetaQuantus (none changes a value for a deterministic metric and explanation method):
unperturbed scores and the IPT's "original" explanations are computed once instead of once per test/perturbation;
randomness comes from ``generator``; the exact Wilcoxon permutation test scipy runs for <= 13 tied or zero
differences is vectorised (same value). ``metaquantus`` 0.0.5 reads any truthy ``score_direction`` (its own configs
pass the strings "higher" and "lower") as lower-is-better in IEC_AR: ``higher_is_better=True`` here equals its
``score_direction=None``.

Long because MetaQuantus's two tests (model and input perturbation, IAC and IEC, noise and adversary) are one
algorithm with shared perturbation and ranking code; its parts are checked together against metaquantus in one test
module.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, TypedDict, Unpack

import numpy as np
import torch
from torch import Tensor, nn

from metrics.functional._checks import (
    check_choice,
    check_generator,
    check_images,
    check_positive_int,
    check_target,
    describe,
)
from metrics.functional._explain import ExplainFn, explain_in_chunks
from metrics.functional._perturb import chunks

MetricFn = Callable[[nn.Module, Tensor, Tensor, Tensor], Tensor]
Test = Literal["model", "input"]


class ReliabilityOptions(TypedDict, total=False):
    """The keyword options of :func:`reliability_of` beyond the metrics and methods (see there), for
    :func:`reliability`."""

    tests: Sequence[Test]
    iterations: int
    n_perturbations: int
    model_std: tuple[float, float]
    model_noise: Literal["multiplicative", "additive"]
    input_noise: tuple[float, float]
    input_explanations: Literal["original", "perturbed"]
    input_perturbations: tuple[Tensor, Tensor] | None
    generator: torch.Generator | None
    batch_size: int


@dataclass(frozen=True)
class PerturbationTestResult:
    """One perturbation test (MPT or IPT) for L methods, I iterations, K perturbations, N images.

    Attributes (tensors on CPU; scores float64):
        scores: ``(L, N)`` unperturbed scores q.
        scores_nr, scores_ar: ``(L, I, K, N)`` scores under the minor / disruptive perturbations.
        kept_nr, kept_ar: bool ``(I, K, N)``: images whose prediction stayed the same / changed, the ones the
            NR / AR criteria use.
        iac_nr_values, iac_ar_values: ``(L, I, K)`` p and 1 - p per method and perturbation.
        iec_nr_values, iec_ar_values: ``(I, K)``.
        iac_nr, iac_ar, iec_nr, iec_ar: the criteria (means of the values above).
        mc: mean of the four criteria; mc_std: standard deviation over iterations of the per-iteration MC.
    """

    scores: Tensor
    scores_nr: Tensor
    scores_ar: Tensor
    kept_nr: Tensor
    kept_ar: Tensor
    iac_nr_values: Tensor
    iac_ar_values: Tensor
    iec_nr_values: Tensor
    iec_ar_values: Tensor
    iac_nr: float
    iac_ar: float
    iec_nr: float
    iec_ar: float
    mc: float
    mc_std: float


@dataclass(frozen=True)
class ReliabilityResult:
    """Both tests' results and each criterion averaged over the tests run (``mc`` = mean of the tests' MC)."""

    methods: tuple[str, ...]
    model_test: PerturbationTestResult | None
    input_test: PerturbationTestResult | None
    iac_nr: float
    iac_ar: float
    iec_nr: float
    iec_ar: float
    mc: float


def _sign_flip_p(d: np.ndarray) -> float:
    """Two-sided p-value of the Wilcoxon statistic (zsplit) over all 2^n sign flips of ``d``: the exact permutation
    test scipy runs for n <= 13 differences with ties or zeros (its tolerance and counting), vectorised."""
    import scipy.stats  # on first use: a run's parent imports this module but never calls this

    n = d.shape[0]
    ranks = scipy.stats.rankdata(np.abs(d))
    zero_half = ranks[d == 0].sum() / 2
    keep = (np.arange(2**n)[:, None] >> np.arange(n)) & 1 == 1  # (2^n, n): sign kept or flipped
    null = (np.where(keep, d > 0, d < 0) * ranks).sum(axis=1) + zero_half
    observed = ranks[d > 0].sum() + zero_half
    gamma = abs(np.finfo(np.float64).eps * 100 * observed)
    return float(min(2 * min(np.mean(null <= observed + gamma), np.mean(null >= observed - gamma)), 1.0))


def _wilcoxon_p(q: np.ndarray, q_hat: np.ndarray) -> float:
    """MetaQuantus's p-value: ``scipy.stats.wilcoxon(q, q_hat, zero_method="zsplit")[1]``, 0.0 where scipy raises.

    For 2 to 13 finite differences with ties or zeros scipy runs an exact permutation test, one Python call per
    sign flip (seconds for n = 13); :func:`_sign_flip_p` computes the same value at once.
    """
    import scipy.stats

    d = q - q_hat
    if 2 <= d.shape[0] <= 13 and bool(np.isfinite(d).all()):
        if bool((d == 0).any()) or np.unique(np.abs(d)).shape[0] < d.shape[0]:
            return _sign_flip_p(d)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(scipy.stats.wilcoxon(q, q_hat, alternative="two-sided", zero_method="zsplit")[1])
    except Exception:  # MetaQuantus sets p = 0.0 whenever the test fails
        return 0.0


def _share(hits: Tensor, kept: Tensor) -> Tensor:
    """Mean of ``hits (..., L, N)`` over methods and kept images ``kept (..., N)``; NaN where none is kept."""
    mask = kept.unsqueeze(-2).expand_as(hits)
    count = mask.sum(dim=(-2, -1)).double()
    total = (hits & mask).sum(dim=(-2, -1)).double()
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(count, float("nan")))


def meta_consistency(
    scores: Tensor,
    scores_nr: Tensor,
    scores_ar: Tensor,
    kept_nr: Tensor,
    kept_ar: Tensor,
    *,
    higher_is_better: bool,
) -> PerturbationTestResult:
    """IAC and IEC under minor (NR) and disruptive (AR) perturbations and the MC score of one test, from raw scores.

    Args:
        scores: ``(L, N)`` unperturbed scores of L explanation methods on N images.
        scores_nr, scores_ar: ``(L, I, K, N)`` scores under the minor / disruptive perturbations.
        kept_nr, kept_ar: bool ``(I, K, N)``, the images each criterion uses (prediction kept / changed).
        higher_is_better: the metric's direction (decides what "worse" means in IEC_AR).

    Returns:
        :class:`PerturbationTestResult`; see the module docstring for the definitions.

    Raises:
        ValueError: if the shapes do not match.
    """
    q = torch.as_tensor(scores).detach().cpu().double()
    if q.ndim != 2:
        raise ValueError(f"scores must be (L, N), got {describe(scores)}")
    n_methods, n = q.shape
    hats, kepts = [], []
    for name, s, kept in (("scores_nr", scores_nr, kept_nr), ("scores_ar", scores_ar, kept_ar)):
        s = torch.as_tensor(s).detach().cpu().double()
        if s.ndim != 4 or s.shape[0] != n_methods or s.shape[3] != n:
            raise ValueError(f"{name} must be (L, I, K, N) = ({n_methods}, I, K, {n}), got {describe(s)}")
        kept = torch.as_tensor(kept).detach().cpu()
        if kept.dtype != torch.bool or tuple(kept.shape) != tuple(s.shape[1:]):
            raise ValueError(f"kept for {name} must be bool {tuple(s.shape[1:])}, got {describe(kept)}")
        hats.append(s)
        kepts.append(kept)
    (s_nr, s_ar), (k_nr, k_ar) = hats, kepts

    def iac(s: Tensor, kept: Tensor, adversary: bool) -> Tensor:
        values = torch.empty(s.shape[:3], dtype=torch.float64)
        q_np, s_np, kept_np = q.numpy(), s.numpy(), kept.numpy()
        for m in range(s.shape[0]):
            for i in range(s.shape[1]):
                for k in range(s.shape[2]):
                    rows = kept_np[i, k]
                    p = _wilcoxon_p(q_np[m][rows], s_np[m, i, k][rows])
                    values[m, i, k] = 1 - p if adversary else p
        return values

    # (L, N): methods ordered by score per image; stable, as numpy's default argsort is for L <= 16 methods
    order = torch.argsort(q, dim=0, stable=True)
    same_order = torch.argsort(s_nr, dim=0, stable=True) == order[:, None, None, :]  # (L, I, K, N)
    worse = s_ar < q[:, None, None, :] if higher_is_better else s_ar > q[:, None, None, :]
    values = {
        "iac_nr_values": iac(s_nr, k_nr, adversary=False),
        "iac_ar_values": iac(s_ar, k_ar, adversary=True),
        "iec_nr_values": _share(same_order.permute(1, 2, 0, 3), k_nr),
        "iec_ar_values": _share(worse.permute(1, 2, 0, 3), k_ar),
    }
    # Per iteration, as MetaQuantus aggregates: IAC over (methods, perturbations), IEC over perturbations.
    per_iteration = torch.stack(
        [
            values["iac_nr_values"].mean(dim=(0, 2)),
            values["iac_ar_values"].mean(dim=(0, 2)),
            values["iec_nr_values"].mean(dim=1),
            values["iec_ar_values"].mean(dim=1),
        ]
    )
    criteria = per_iteration.mean(dim=1)
    return PerturbationTestResult(
        scores=q,
        scores_nr=s_nr,
        scores_ar=s_ar,
        kept_nr=k_nr,
        kept_ar=k_ar,
        **values,
        iac_nr=float(criteria[0]),
        iac_ar=float(criteria[1]),
        iec_nr=float(criteria[2]),
        iec_ar=float(criteria[3]),
        mc=float(per_iteration.mean()),
        mc_std=float(per_iteration.mean(dim=0).std(correction=0)),
    )


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _predict(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    """Argmax of the model's output ``(N,)`` on CPU."""
    with torch.no_grad():
        return torch.cat([model(x[a:b]).argmax(dim=1).cpu() for a, b in chunks(x.shape[0], batch_size)])


def _score(metric: MetricFn, model: nn.Module, x: Tensor, attributions: Tensor, target: Tensor) -> Tensor:
    out = metric(model, x, attributions, target)
    if not isinstance(out, Tensor) or tuple(out.shape) != (x.shape[0],):
        raise ValueError(f"metric must return a tensor of shape ({x.shape[0]},), got {describe(out)}")
    return out.detach().cpu().double()


def _noisy_copy(model: nn.Module, mean: float, std: float, noise: str, generator: torch.Generator | None) -> nn.Module:
    """A deep copy whose parameters (not buffers) are multiplied by (or added) N(mean, std) draws, drawn per
    parameter in ``parameters()`` order as ``torch.distributions.Normal(mean, std).sample(shape)`` draws them
    (float32, on the generator's device): Quantus's ``PyTorchModel.sample``, which MetaQuantus calls."""
    device = generator.device if generator is not None else torch.device("cpu")
    loc, scale = torch.tensor(mean, device=device), torch.tensor(std, device=device)
    perturbed = copy.deepcopy(model)
    with torch.no_grad():
        for p in perturbed.parameters():
            draw = torch.normal(loc.expand(p.shape), scale.expand(p.shape), generator=generator).to(p.device)
            if noise == "multiplicative":
                p.mul_(draw)
            else:
                p.add_(draw)
    return perturbed


@dataclass(frozen=True)
class _Setup:
    model: nn.Module
    x: Tensor
    target: Tensor
    predictions: Tensor  # (N,) on CPU
    metrics: list[MetricFn]  # M metrics scored on the same perturbations and explanations
    fns: list[ExplainFn]
    iterations: int
    n_perturbations: int
    generator: torch.Generator | None
    batch_size: int

    def empty(self) -> tuple[Tensor, Tensor]:
        """Scores ``(M, L, I, K, N)`` and kept images ``(I, K, N)``."""
        shape = (self.iterations, self.n_perturbations, self.x.shape[0])
        scores = torch.empty(len(self.metrics), len(self.fns), *shape, dtype=torch.float64)
        return scores, torch.empty(shape, dtype=torch.bool)


def _model_test(s: _Setup, stds: tuple[float, float], noise: str) -> list[Tensor]:
    """``[scores_nr, kept_nr, scores_ar, kept_ar]`` of the Model Perturbation Test."""
    mean = 1.0 if noise == "multiplicative" else 0.0
    out = []
    for std, keep_same in ((stds[0], True), (stds[1], False)):
        scores, kept = s.empty()
        for i in range(s.iterations):
            for k in range(s.n_perturbations):
                perturbed = _noisy_copy(s.model, mean, std, noise, s.generator)
                same = _predict(perturbed, s.x, s.batch_size) == s.predictions
                kept[i, k] = same if keep_same else ~same
                for m, fn in enumerate(s.fns):
                    a = explain_in_chunks(fn, perturbed, s.x, s.target, s.batch_size)
                    for j, metric in enumerate(s.metrics):
                        scores[j, m, i, k] = _score(metric, perturbed, s.x, a, s.target)
        out += [scores, kept]
    return out


def _input_test(
    s: _Setup,
    attributions: list[Tensor],
    eps: tuple[float, float],
    deltas: tuple[Tensor | None, Tensor | None],
    explain_perturbed: bool,
) -> list[Tensor]:
    """``[scores_nr, kept_nr, scores_ar, kept_ar]`` of the Input Perturbation Test; the K perturbed copies of the
    batch go through the model (and ``explain_fn`` if ``explain_perturbed``) together, in chunks of batch_size."""
    x, n, k_count = s.x, s.x.shape[0], s.n_perturbations
    work = torch.float32 if x.device.type == "mps" else torch.float64
    low = x.min().to(work)
    draw_device = s.generator.device if s.generator is not None else torch.device("cpu")
    tiled = s.target.repeat(k_count)
    out = []
    for level, given, keep_same in ((eps[0], deltas[0], True), (eps[1], deltas[1], False)):
        scores, kept = s.empty()
        for i in range(s.iterations):
            if given is None:
                u = torch.rand((k_count, *x.shape), generator=s.generator, dtype=torch.float64, device=draw_device)
                delta = -level + 2 * level * u  # numpy.random.uniform(-eps, eps), as MetaQuantus draws it
            else:
                delta = given[i]
            x_hat = (x.to(work) + delta.to(x.device, work)).clamp_min(low).to(x.dtype)  # (K, N, C, H, W)
            flat = x_hat.flatten(0, 1)
            same = (_predict(s.model, flat, s.batch_size) == s.predictions.repeat(k_count)).view(k_count, n)
            kept[i] = same if keep_same else ~same
            for m, fn in enumerate(s.fns):
                a = attributions[m].expand(k_count, *attributions[m].shape)
                if explain_perturbed:
                    a = explain_in_chunks(fn, s.model, flat, tiled, s.batch_size).view(
                        k_count, n, *attributions[m].shape[1:]
                    )
                for k in range(k_count):
                    for j, metric in enumerate(s.metrics):
                        scores[j, m, i, k] = _score(metric, s.model, x_hat[k], a[k], s.target)
        out += [scores, kept]
    return out


def _pair(value: object, name: str) -> tuple[float, float]:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValueError(f"{name} must be a (minor, disruptive) pair of positive numbers, got {value!r}")
    return float(value[0]), float(value[1])


def _check_deltas(value: object, shape: tuple[int, ...]) -> tuple[Tensor | None, Tensor | None]:
    if value is None:
        return None, None
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(d, Tensor) and d.is_floating_point() and tuple(d.shape) == shape for d in value)
    ):
        raise ValueError(f"input_perturbations must be None or a pair of float tensors of shape {shape}, got {value!r}")
    return value[0], value[1]


def reliability(
    model: nn.Module,
    x: Tensor,
    target: Tensor | None = None,
    *,
    metric: MetricFn,
    explain_fns: Mapping[str, ExplainFn],
    higher_is_better: bool,
    **kwargs: Unpack[ReliabilityOptions],
) -> ReliabilityResult:
    """Noise resilience and adversary reactivity of one ``metric`` on ``model``: :func:`reliability_of` with one
    metric (see there for the arguments)."""
    return reliability_of(
        model, x, target, metrics={"metric": (metric, higher_is_better)}, explain_fns=explain_fns, **kwargs
    )["metric"]


def reliability_of(
    model: nn.Module,
    x: Tensor,
    target: Tensor | None = None,
    *,
    metrics: Mapping[str, tuple[MetricFn, bool]],
    explain_fns: Mapping[str, ExplainFn],
    tests: Sequence[Test] = ("model", "input"),
    iterations: int = 5,
    n_perturbations: int = 10,
    model_std: tuple[float, float] = (0.001, 2.0),
    model_noise: Literal["multiplicative", "additive"] = "multiplicative",
    input_noise: tuple[float, float] = (0.001, 5.0),
    input_explanations: Literal["original", "perturbed"] = "original",
    input_perturbations: tuple[Tensor, Tensor] | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 256,
) -> dict[str, ReliabilityResult]:
    """Noise resilience and adversary reactivity of each of ``metrics`` on ``model`` (MetaQuantus's IAC, IEC and MC
    scores). The metrics share the perturbed models, inputs and explanations: each is scored on exactly the
    perturbations it would see alone (the noise does not depend on the metrics), at the cost of one.

    See the module docstring for the tests and criteria. Cost: per test 2 x iterations x n_perturbations
    perturbations; the model test explains and scores N images with every method for each (a fresh noisy copy of
    the model each time), the input test runs the K perturbed batches of one iteration through the model together
    and, with ``input_explanations="original"``, only scores them. Lower ``iterations``, ``n_perturbations`` or run
    one of ``tests`` to reduce it.

    Args:
        model: the classifier (not modified; evaluated in eval mode).
        x: float ``(N, C, H, W)``.
        target: int64 ``(N,)``, the class explained and scored; ``None`` (MetaQuantus) = the model's predictions.
            The NR/AR image selection always compares predictions with the unperturbed ones.
        metrics: ``{name: (metric, higher_is_better)}`` with ``metric(model, x, attributions, target) -> (N,)``
            scores; called with the perturbed model (model test) or the perturbed input (input test). A randomised
            metric should seed its own generator on each call, else IAC_NR also measures its sampling noise.
        explain_fns: ``{name: (model, x, target) -> attributions (B, ...)}``, L >= 1 methods (IEC needs L >= 2 to
            be informative: with one method IEC_NR is 1).
        tests: which perturbation tests to run.
        iterations, n_perturbations: I and K (MetaQuantus ``MetaEvaluation`` defaults 5 and 10; the paper's runs
            used K=5, I=3).
        model_std: sigma of the (minor, disruptive) weight noise; ``model_noise``: multiplicative N(1, sigma) or
            additive N(0, sigma).
        input_noise: eps of the (minor, disruptive) U[-eps, eps] input noise.
        input_explanations: "original" (MetaQuantus) or "perturbed" (explain x_hat with the model).
        input_perturbations: explicit (minor, disruptive) input noise, each float ``(I, K, N, C, H, W)``, used
            instead of drawing it (to replay another implementation's draws).
        generator: source of all noise, drawn in this order: model NR (I x K copies, each parameter in
            ``parameters()`` order), model AR, input NR (one ``(K, N, C, H, W)`` draw per iteration), input AR.
            ``None`` uses torch's global RNG, as MetaQuantus does.
        batch_size: images per forward pass and per ``explain_fn`` call.

    Returns:
        ``{name: ReliabilityResult}``: per metric and test, the raw scores ``(L, I, K, N)``, kept images and the
        criteria; the criteria averaged over the tests run.

    Raises:
        ValueError: bad argument (named), or a metric / explain_fn returning the wrong shape or NaN attributions.
    """
    check_images(x)
    check_generator(generator)
    if (
        not isinstance(metrics, Mapping)
        or not metrics
        or not all(isinstance(v, tuple) and len(v) == 2 and callable(v[0]) for v in metrics.values())
    ):
        raise ValueError(
            f"metrics must be a non-empty dict of (metric, higher_is_better) pairs, got {describe(metrics)}"
        )
    if not isinstance(explain_fns, Mapping) or not explain_fns or not all(map(callable, explain_fns.values())):
        raise ValueError(f"explain_fns must be a non-empty dict of callables, got {describe(explain_fns)}")
    if isinstance(tests, str) or not tests or len(set(tests)) != len(tests):
        raise ValueError(f"tests must be a non-empty sequence of distinct 'model' / 'input', got {tests!r}")
    for test in tests:
        check_choice(test, "tests", ("model", "input"))
    check_positive_int(iterations, "iterations")
    check_positive_int(n_perturbations, "n_perturbations")
    check_positive_int(batch_size, "batch_size")
    stds, eps = _pair(model_std, "model_std"), _pair(input_noise, "input_noise")
    check_choice(model_noise, "model_noise", ("multiplicative", "additive"))
    check_choice(input_explanations, "input_explanations", ("original", "perturbed"))
    deltas = _check_deltas(input_perturbations, (iterations, n_perturbations, *x.shape))

    with _eval_mode(model):
        predictions = _predict(model, x, batch_size)
        target = predictions.to(x.device) if target is None else check_target(target, x.shape[0], x.device)
        fns = list(explain_fns.values())
        fns, names = list(explain_fns.values()), list(metrics)
        metric_fns = [metrics[name][0] for name in names]
        s = _Setup(model, x, target, predictions, metric_fns, fns, iterations, n_perturbations, generator, batch_size)
        attributions = [explain_in_chunks(fn, model, x, target, batch_size) for fn in fns]
        scores = [torch.stack([_score(fn, model, x, a, target) for a in attributions]) for fn in metric_fns]
        raw: dict[str, list[Tensor]] = {}
        for test in ("model", "input"):  # fixed order: the generator's draws do not depend on the order in tests
            if test not in tests:
                continue
            if test == "model":
                raw[test] = _model_test(s, stds, model_noise)
            else:
                raw[test] = _input_test(s, attributions, eps, deltas, input_explanations == "perturbed")
    out = {}
    for j, name in enumerate(names):
        higher = bool(metrics[name][1])
        results = {
            test: meta_consistency(scores[j], r[0][j], r[2][j], r[1], r[3], higher_is_better=higher)
            for test, r in raw.items()
        }
        out[name] = _combine(tuple(explain_fns), results)
    return out


def _combine(methods: tuple[str, ...], results: dict[str, PerturbationTestResult]) -> ReliabilityResult:
    """Each criterion averaged over the tests run."""

    def mean(field: str) -> float:
        return float(np.mean([getattr(r, field) for r in results.values()]))

    return ReliabilityResult(
        methods=methods,
        model_test=results.get("model"),
        input_test=results.get("input"),
        iac_nr=mean("iac_nr"),
        iac_ar=mean("iac_ar"),
        iec_nr=mean("iec_nr"),
        iec_ar=mean("iec_ar"),
        mc=mean("mc"),
    )
