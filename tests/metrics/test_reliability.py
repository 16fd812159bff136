"""Metric reliability (MetaQuantus): against the ``metaquantus`` package on the same inputs and draws, and known
answers derived from the definitions (a metric that ignores the attributions; a metric the minor perturbation
cannot move)."""

from __future__ import annotations

import copy
import gc
import warnings

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from metrics.functional import relevance_mass_accuracy
from metrics.reliability import _wilcoxon_p, meta_consistency, reliability
from tests.metrics.conftest import record_numpy_random

# Scores are float64 on both sides and differ only in summation order: RMA sums <= 784 terms of a map whose total
# is its denominator, so |ours - theirs| <= ~784 * 2^-52 < 2e-13. p-values and IEC shares then come from the same
# ranks and counts, identical unless two |differences| lie within 1e-13 of each other.
TOL = 1e-12


def gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Signed d output_target / d x."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x).gather(1, target[:, None]).sum(), x)
    return grad


def saliency(model, x, target):
    return gradient(model, x, target).abs()


def input_x_saliency(model, x, target):
    return x * saliency(model, x, target)


class Float64(nn.Module):
    """The wrapped network in float64; casts its input (MetaQuantus predicts on ``torch.Tensor(x)``, float32)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(torch.float64))


class Linear(nn.Module):
    """Logits ``W x + b`` on flattened pixels, float64 parameters (so weight noise perturbs them)."""

    def __init__(self, n_features: int, n_classes: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(n_classes, n_features, generator=g, dtype=torch.float64))
        self.bias = nn.Parameter(torch.randn(n_classes, generator=g, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).to(torch.float64) @ self.weight.T + self.bias


# ---- against MetaQuantus ------------------------------------------------------------------------------------------


def _metaquantus_run(model, x, s, fns, iterations, k):
    """MetaQuantus 0.0.5 with its (Fashion-)MNIST test suite and RelevanceMassAccuracy on raw attributions; torch
    is seeded with 0 and its np.random.uniform draws (the input noise) are recorded."""
    metaquantus = pytest.importorskip("metaquantus")
    import quantus

    def explain_func(model, inputs, targets, method, **kwargs):
        return fns[method](model, torch.as_tensor(inputs), torch.as_tensor(targets, dtype=torch.int64)).numpy()

    suite = {  # MetaQuantus's setup_test_suite("fMNIST"); model tests first, so torch's draws come first
        "Model Resilience Test": metaquantus.ModelPerturbationTest("Resilience", "multiplicative", 1.0, 0.001),
        "Model Adversary Test": metaquantus.ModelPerturbationTest("Adversary", "multiplicative", 1.0, 2.0),
        "Input Resilience Test": metaquantus.InputPerturbationTest("Resilience", 0.001),
        "Input Adversary Test": metaquantus.InputPerturbationTest("Adversary", 5.0),
    }
    meta = metaquantus.MetaEvaluation(
        test_suite=suite,
        xai_methods={name: {} for name in fns},
        iterations=iterations,
        nr_perturbations=k,
        explain_func=explain_func,
        write_to_file=False,
    )
    estimator = quantus.RelevanceMassAccuracy(abs=False, normalise=False, disable_warnings=True)
    np_state = np.random.get_state()
    gc.freeze()  # MetaQuantus calls gc.collect() 4 times per explanation; this keeps them from scanning the session
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings(), record_numpy_random("uniform") as draws:
            warnings.simplefilter("ignore")
            torch.manual_seed(0)
            np.random.seed(0)
            y = torch.zeros(x.shape[0], dtype=torch.int64).numpy()  # its labels only feed an unused accuracy
            meta(
                estimator=estimator, model=model, x_batch=x.numpy(), y_batch=y, s_batch=s.numpy(), score_direction=None
            )
    finally:
        gc.unfreeze()
        np.random.set_state(np_state)
    assert len(draws) == 2 * iterations * k
    noise = torch.as_tensor(np.stack(draws)).reshape(2, iterations, k, *x.shape)
    return meta, noise


def _tiny_cnn() -> nn.Module:
    """Random weights, no biases: its predictions vary over images and change under U[-5, 5] input noise."""
    g = torch.Generator().manual_seed(2)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 if p.ndim > 1 else torch.zeros_like(p))
    return net


@pytest.mark.parametrize("which", ["tiny_cnn", pytest.param("fmnist_standard", marks=pytest.mark.slow)])
def test_matches_metaquantus(which, request, images):
    iterations, k = 2, 3
    net = _tiny_cnn() if which == "tiny_cnn" else request.getfixturevalue("standard_model")
    model = Float64(copy.deepcopy(net)).eval()
    # 8 images: where MetaQuantus's IPT leaves 2..13 zero differences, scipy enumerates 2^n sign flips in Python
    x = images[0][:8].double()
    mask = x > 0.1  # (N, 1, H, W) bright pixels as the object
    fns = {"saliency": saliency, "input_x_saliency": input_x_saliency}
    meta, noise = _metaquantus_run(model, x, mask, fns, iterations, k)

    ours = reliability(
        model,
        x,
        metric=lambda m, xb, a, t: relevance_mass_accuracy(a, mask),
        explain_fns=fns,
        higher_is_better=True,
        iterations=iterations,
        n_perturbations=k,
        input_perturbations=(noise[0], noise[1]),
        generator=torch.Generator().manual_seed(0),
    )
    assert ours.methods == tuple(fns)
    for kind, result in (("Model", ours.model_test), ("Input", ours.input_test)):
        for phase, name in (("nr", f"{kind} Resilience Test"), ("ar", f"{kind} Adversary Test")):
            kept = getattr(result, f"kept_{phase}")
            for i in range(iterations):
                np.testing.assert_array_equal(kept[i].numpy(), meta.results_indices_perturbed[name][i])
            np.testing.assert_array_equal(
                getattr(result, f"iec_{phase}_values").numpy(), meta.results_inter_scores[name]
            )
            for m, method in enumerate(fns):
                np.testing.assert_allclose(result.scores[m].numpy(), meta.results_eval_scores[name][method], atol=TOL)
                theirs = np.stack([meta.results_eval_scores_perturbed[name][i][method] for i in range(iterations)])
                np.testing.assert_allclose(getattr(result, f"scores_{phase}")[m].numpy(), theirs, atol=TOL, rtol=0)
                np.testing.assert_allclose(
                    getattr(result, f"iac_{phase}_values")[m].numpy(),
                    meta.results_intra_scores[name][method],
                    atol=TOL,
                    rtol=0,
                )
        mc = meta.results_meta_consistency_scores[kind]
        summary = mc["consistency_results"]
        got = [result.iac_nr, result.iac_ar, result.iec_nr, result.iec_ar, result.mc, result.mc_std]
        want = [
            summary["IAC_{NR} mean"],
            summary["IAC_{AR} mean"],
            summary["IEC_{NR} mean"],
            summary["IEC_{AR} mean"],
            mc["MC_mean"],
            mc["MC_std"],
        ]
        np.testing.assert_allclose(got, want, atol=TOL, rtol=0)
    # Both selections were exercised: the disruptive model noise changed predictions, the minor one kept them.
    assert ours.model_test.kept_ar.float().mean() > 0.5 and ours.model_test.kept_nr.float().mean() > 0.9
    # MetaQuantus's IPT scores the clean input's explanations, which a mask metric does not see perturbed: every
    # difference is 0, so p = 1 wherever >= 2 images count (IAC_NR = 1, IAC_AR = 0), NaN where none does.
    test = ours.input_test
    for values, kept, expected in ((test.iac_nr_values, test.kept_nr, 1.0), (test.iac_ar_values, test.kept_ar, 0.0)):
        count = kept.sum(dim=-1).expand_as(values)
        assert values[count >= 2].eq(expected).all() and values[count == 0].isnan().all()
        assert bool((count >= 2).any())


def test_criteria_match_metaquantus_formulas():
    """meta_consistency against MetaQuantus's own IAC/IEC functions on raw scores with ties, zero differences,
    NaN scores, and perturbations that keep 0, 1, 2 or all images."""
    metaquantus = pytest.importorskip("metaquantus")
    evaluation = metaquantus.MetaEvaluation
    g = torch.Generator().manual_seed(0)
    n_methods, iterations, k, n = 3, 2, 4, 30
    q = torch.randint(0, 4, (n_methods, n), generator=g).double()  # few values: ties across methods and images
    hats = [
        q[:, None, None, :] + torch.randint(-1, 2, (n_methods, iterations, k, n), generator=g).double() * 0.5
        for _ in range(2)
    ]
    hats[0][:, 0, 0] = q  # all differences zero
    hats[1][0, 1, 2, 3] = float("nan")
    kept = [torch.rand(iterations, k, n, generator=g) < 0.8 for _ in range(2)]
    kept[0][1, 1] = False  # nobody kept: NaN
    kept[1][0, 0] = False
    kept[1][0, 0, 5] = True  # one image kept
    kept[1][0, 1] = False
    kept[1][0, 1, :2] = True  # two images kept
    for higher_is_better, direction in ((True, None), (False, "lower")):
        ours = meta_consistency(q, hats[0], hats[1], kept[0], kept[1], higher_is_better=higher_is_better)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for phase, hat, kp in (("nr", hats[0], kept[0]), ("ar", hats[1], kept[1])):
                test = "Resilience" if phase == "nr" else "Adversary"
                for i in range(iterations):
                    for j in range(k):
                        rows = kp[i, j].numpy()
                        iac = [
                            evaluation.compute_iac_score(q[m].numpy(), hat[m, i, j].numpy(), rows, test)
                            for m in range(n_methods)
                        ]
                        np.testing.assert_allclose(
                            getattr(ours, f"iac_{phase}_values")[:, i, j].numpy(), iac, atol=1e-15, rtol=0
                        )
                        if phase == "nr":
                            iec = evaluation.compute_iec_resilience(q.numpy(), hat[:, i, j].numpy(), rows)
                        else:
                            iec = evaluation.compute_iec_adversary(q.numpy(), hat[:, i, j].numpy(), rows, direction)
                        np.testing.assert_allclose(
                            float(getattr(ours, f"iec_{phase}_values")[i, j]), iec, atol=1e-15, rtol=0
                        )
    assert ours.iac_nr_values[:, 0, 0].tolist() == [1.0] * n_methods  # identical scores: p = 1
    assert torch.isnan(ours.iec_nr_values[1, 1]) and torch.isnan(ours.iac_nr_values[:, 1, 1]).all()
    # One pair: scipy's p is 1.0 for a non-zero difference; for a zero one it raises and MetaQuantus takes p = 0.
    one = kept[1][0, 0]
    expected = [0.0 if hats[1][m, 0, 0][one] != q[m][one] else 1.0 for m in range(n_methods)]  # AR: 1 - p
    assert ours.iac_ar_values[:, 0, 0].tolist() == expected and 0.0 in expected


def test_wilcoxon_p_matches_scipy():
    """The vectorised exact sign-flip test equals scipy's (which MetaQuantus calls) where scipy permutes: 2 to 13
    differences with ties or zeros; elsewhere scipy itself runs. A lone zero difference makes scipy raise: p = 0."""
    rng = np.random.default_rng(0)
    cases = [(np.ones(n), np.ones(n)) for n in (1, 2, 5, 13, 20)]  # all differences zero
    for n in (2, 3, 4, 6, 8, 9, 9, 16):
        q = rng.integers(0, 4, n) / 2
        cases.append((q, q + rng.integers(-2, 3, n) / 4))  # ties and zeros
    cases += [(np.arange(6.0), np.arange(6.0) + [0.1, -0.3, 0.2, 0.5, -0.4, 0.7]), (np.array([1.0]), np.array([2.0]))]
    cases.append((np.array([1.0, np.nan, 2.0]), np.array([1.0, 0.0, 1.0])))
    for q, q_hat in cases:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = scipy.stats.wilcoxon(q, q_hat, alternative="two-sided", zero_method="zsplit")[1]
        except ValueError:
            expected = 0.0
        np.testing.assert_equal(_wilcoxon_p(q, q_hat), expected)
    assert _wilcoxon_p(np.zeros(1), np.zeros(1)) == 0.0 and _wilcoxon_p(np.zeros(4), np.zeros(4)) == 1.0


# ---- known answers ------------------------------------------------------------------------------------------------


def _linear_setup():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(12, 1, 6, 6, generator=g, dtype=torch.float64)
    return Linear(36, 10, seed=2), x


def test_metric_ignoring_attributions_does_not_react():
    """A constant score: every difference is 0, so p = 1 (scipy, n >= 2 pairs): IAC_NR = 1 and IAC_AR = 1 - p = 0;
    the methods tie on every image, so their order never changes (IEC_NR = 1) and no score ever gets worse
    (IEC_AR = 0, its floor). MC = (1 + 0 + 1 + 0) / 4."""
    model, x = _linear_setup()
    before = copy.deepcopy(model.state_dict())
    result = reliability(
        model,
        x,
        metric=lambda m, xb, a, t: torch.full((xb.shape[0],), 0.3, dtype=torch.float64),
        explain_fns={"gradient": gradient, "saliency": saliency},
        higher_is_better=True,
        iterations=2,
        n_perturbations=3,
        generator=torch.Generator().manual_seed(0),
    )
    for test in (result.model_test, result.input_test):
        assert bool((test.kept_ar.sum(dim=-1) >= 2).all())  # the derivation needs >= 2 changed predictions
        assert (test.iac_nr, test.iac_ar, test.iec_nr, test.iec_ar, test.mc) == (1.0, 0.0, 1.0, 0.0, 0.5)
        assert test.iec_ar_values.eq(0).all() and test.mc_std == 0.0
        assert test.scores_nr.shape == (2, 2, 3, 12) and test.kept_nr.shape == (2, 3, 12)
    assert (result.iac_ar, result.iec_ar, result.mc) == (0.0, 0.0, 0.5)
    assert all(torch.equal(v, before[name]) for name, v in model.state_dict().items())


@pytest.mark.parametrize("input_explanations", ["original", "perturbed"])
def test_metric_invariant_under_minor_perturbation_has_full_resilience(input_explanations):
    """The gradient of a linear model is its target row W_t, whatever the input; N(1, 0.001) weight factors are
    positive (1000 sigma from 0), so the sign pattern of W_t survives the minor model perturbation, and input noise
    cannot change it either. A metric of the signs alone (share of positive attributions) gives q_hat = q exactly:
    p = 1, IAC_NR = 1, and the methods' order is unchanged, IEC_NR = 1."""
    model, x = _linear_setup()
    result = reliability(
        model,
        x,
        metric=lambda m, xb, a, t: (a > 0).double().flatten(1).mean(dim=1),
        explain_fns={"gradient": gradient, "negative": lambda m, xb, t: -gradient(m, xb, t)},
        higher_is_better=True,
        iterations=2,
        n_perturbations=3,
        input_explanations=input_explanations,
        generator=torch.Generator().manual_seed(0),
    )
    for test in (result.model_test, result.input_test):
        assert bool((test.kept_nr.sum(dim=-1) >= 2).all())
        assert torch.equal(test.scores_nr, test.scores[:, None, None, :].expand_as(test.scores_nr))
        assert (test.iac_nr, test.iec_nr) == (1.0, 1.0)
    # The disruptive weight noise (sigma = 2) flips signs of W, so the model test's AR scores do move.
    assert not torch.equal(result.model_test.scores_ar, result.model_test.scores[:, None, None, :].expand(-1, 2, 3, -1))


def test_bad_arguments():
    model, x = _linear_setup()
    ok = dict(
        metric=lambda m, xb, a, t: a.flatten(1).sum(1),
        explain_fns={"g": gradient},
        higher_is_better=True,
        iterations=1,
        n_perturbations=1,
    )
    with pytest.raises(ValueError, match="metric must return"):
        reliability(model, x, **{**ok, "metric": lambda m, xb, a, t: a.sum()})
    with pytest.raises(ValueError, match="explain_fns"):
        reliability(model, x, **{**ok, "explain_fns": {}})
    with pytest.raises(ValueError, match="tests"):
        reliability(model, x, tests=("model", "weights"), **ok)
    with pytest.raises(ValueError, match="model_std"):
        reliability(model, x, model_std=(0.0, 2.0), **ok)
    with pytest.raises(ValueError, match="input_perturbations"):
        reliability(model, x, input_perturbations=(x, x), **ok)
    with pytest.raises(ValueError, match="target"):
        reliability(model, x, torch.zeros(3, dtype=torch.int64), **ok)
