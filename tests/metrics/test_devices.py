"""CUDA gives the CPU's values (same generator seeds) and keeps results on the GPU.

Both devices run the same float64 copy of the model (rounding.Float64) with cuDNN off (its FFT and Winograd
convolutions are outside the entrywise rounding model; PyTorch's own CUDA convolutions are GEMMs), so every logit is
within E = rounding.logit_error_bound of the exact one on either device, whatever order the kernels sum in. The
tolerances below follow from E as derived in test_faithfulness.py, test_faithfulness_correlation.py and
test_infidelity.py; the metrics store scores at u_s = rounding.metric_score_roundoff() (float32 while
metrics.functional._perturb stores them in float32).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import metrics.functional as F
from metrics.functional.faithfulness_correlation import _draw_subsets
from tests.metrics.conftest import saliency
from tests.metrics.rounding import (
    U64,
    Float64,
    gamma,
    logit_error_bound,
    metric_score_roundoff,
    probability_error_bound,
)
from tests.metrics.test_faithfulness_correlation import correlation_tolerance
from tests.metrics.test_infidelity import infidelity_tolerance

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def gpu(standard_model, images, standard_saliency):
    enabled = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    x, y, a = images[0][:6].double(), images[1][:6], standard_saliency[:6].double()
    model = Float64(standard_model)
    cuda = torch.device("cuda")
    yield model, copy.deepcopy(model).to(cuda), (x, y, a), (x.to(cuda), y.to(cuda), a.to(cuda))
    torch.backends.cudnn.enabled = enabled


def _same(cpu_out: torch.Tensor, gpu_out: torch.Tensor, atol) -> None:
    assert gpu_out.device.type == "cuda"
    assert bool((np.abs(gpu_out.cpu().numpy() - cpu_out.numpy()) <= atol).all()), (gpu_out.cpu() - cpu_out, atol)


def _auc_tolerance(model, n_steps: int) -> float:
    """Two AUCs of curves whose points differ by <= 2 (e_p + u_s): the trapezoid over rounded fractions c_k / F
    adds <= (3 n + 3) u_s of a value <= 1 on each device (widths, sums, products and the sum of n terms)."""
    u_s = metric_score_roundoff()
    return 2 * (probability_error_bound(logit_error_bound(model, (1, 28, 28))) + u_s) + 2 * (3 * n_steps + 3) * u_s


def _tolerance(name, model, x, a, y):
    u_s = metric_score_roundoff()
    if name == "perturbation_curve":
        return 2 * (probability_error_bound(logit_error_bound(model, (1, 28, 28))) + u_s)
    if name == "deletion_auc":  # patch_size=4: 49 features, one step each
        return _auc_tolerance(model, 49)
    if name == "abpc":
        return 2 * _auc_tolerance(model, 28)
    if name == "deletion_auc_relative":  # a mean of two random AUCs (+ u_s), minus one AUC
        return 2 * _auc_tolerance(model, 28) + u_s
    if name == "faithfulness_correlation":  # the generator draws the subsets, then the baseline
        g = torch.Generator().manual_seed(0)
        subsets = _draw_subsets(x.shape[0], 10, 50, 784, g, torch.device("cpu"))
        base = torch.rand(x.shape, generator=g, dtype=torch.float64)
        return correlation_tolerance(model, x, a, y, subsets, softmax=False, base=base)
    if name == "infidelity":
        noise = torch.rand((x.shape[0], 2, 16), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        value = F.infidelity(model, x, a, y, baseline="uniform", n_samples=2, patch_size=7, noise=noise)
        return infidelity_tolerance(model, x, a, y, 7, value, noise=noise)
    raise AssertionError(name)


@pytest.mark.parametrize(
    ("fn", "kwargs"),
    [
        (F.perturbation_curve, dict(order="random", mode="insertion", n_steps=14)),
        (F.deletion_auc, dict(patch_size=4)),
        (F.abpc, dict(n_steps=28)),
        (F.deletion_auc_relative, dict(n_steps=28, n_random=2)),
        (F.faithfulness_correlation, dict(n_runs=10, subset_size=50, baseline="uniform")),
        (F.infidelity, dict(baseline="uniform", n_samples=2, patch_size=7)),
    ],
)
def test_model_metrics_match_cpu(fn, kwargs, gpu):
    model_cpu, model_gpu, (x, y, a), (xg, yg, ag) = gpu
    cpu_out = fn(model_cpu, x, a, y, generator=torch.Generator().manual_seed(0), **kwargs)
    gpu_out = fn(model_gpu, xg, ag, yg, generator=torch.Generator().manual_seed(0), batch_size=4096, **kwargs)
    tol = _tolerance(fn.__name__, model_cpu, x, a, y)
    # still a check that can tell other subsets, noise or orders from rounding:
    assert bool(np.all(tol < 1e-3 * np.maximum(1.0, np.abs(cpu_out.numpy()))))
    _same(cpu_out, gpu_out, tol)


def test_explanation_metrics_match_cpu(gpu):
    # Gradients have no bound derived here (the backward pass is the same kind of sums as the forward pass, whose
    # float64 bound is < 1e-7 relative to the logits): 1e-6 is a margin of > 10^5 over typical float64 differences,
    # and for the Spearman ranks of MPRT allows ~40 swaps of adjacent ranks (each <= 12 / n^2 = 2e-5 / 784).
    model_cpu, model_gpu, (x, y, _), (xg, yg, _) = gpu
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    _same(
        F.max_sensitivity(model_cpu, x, y, saliency, n_samples=5, generator=g()),
        F.max_sensitivity(model_gpu, xg, yg, saliency, n_samples=5, generator=g()),
        1e-6,
    )
    _same(
        F.model_parameter_randomisation(model_cpu, x, y, saliency, generator=g()),
        F.model_parameter_randomisation(model_gpu, xg, yg, saliency, generator=g()),
        1e-6,
    )
    assert next(model_gpu.parameters()).device.type == "cuda"


def test_pure_metrics_on_gpu(gpu):
    # float64 accumulation on both devices: the results differ by a few float64 roundings of sums of <= 784 terms
    # (<= 4 gamma_784 u64 ~ 3.5e-13 relative to values <= 1), or of ranks (exact) for Spearman.
    _, _, (x, y, a), (xg, yg, ag) = gpu
    tol = 4 * gamma(784, U64) + 1e-15
    mask = x > 0.3
    for fn in (F.relevance_mass_accuracy, F.relevance_mass_ratio, F.relevance_rank_accuracy, F.pointing_game):
        _same(fn(a, mask), fn(ag, mask.cuda()), tol * 784)  # relevance_mass_ratio divides by the mask share >= 1/784
    _same(
        F.grid_pointing_game(a, torch.arange(6) % 4), F.grid_pointing_game(ag, torch.arange(6, device="cuda") % 4), tol
    )
    _same(F.sparseness(a), F.sparseness(ag), tol)
    _same(F.spearman(a, x), F.spearman(ag, xg), tol)
