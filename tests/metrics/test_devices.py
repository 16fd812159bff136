"""CUDA gives the CPU's values (same generator seeds, TF32 off) and keeps results on the GPU."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import metrics.functional as F
from tests.metrics.conftest import saliency

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

ATOL = 1e-4  # cuDNN vs oneDNN convolutions (TF32 off): float32 summation order only


@pytest.fixture(scope="module")
def gpu(standard_model, images, standard_saliency):
    flags = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    x, y, a = images[0][:6], images[1][:6], standard_saliency[:6]
    cuda = torch.device("cuda")
    yield standard_model, copy.deepcopy(standard_model).to(cuda), (x, y, a), (x.to(cuda), y.to(cuda), a.to(cuda))
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags


def _same(cpu_out: torch.Tensor, gpu_out: torch.Tensor, atol: float = ATOL) -> None:
    assert gpu_out.device.type == "cuda"
    np.testing.assert_allclose(gpu_out.cpu().numpy(), cpu_out.numpy(), atol=atol, rtol=0)


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
    # Infidelity is a squared logit gap (~1e2): compare relatively.
    _same(cpu_out / cpu_out.abs().clamp(min=1), gpu_out / gpu_out.abs().clamp(min=1))


def test_explanation_metrics_match_cpu(gpu):
    model_cpu, model_gpu, (x, y, _), (xg, yg, _) = gpu
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    _same(F.max_sensitivity(model_cpu, x, y, saliency, n_samples=5, generator=g()),
          F.max_sensitivity(model_gpu, xg, yg, saliency, n_samples=5, generator=g()))  # fmt: skip
    # Spearman ranks can swap for nearly equal gradients: a looser tolerance.
    _same(F.model_parameter_randomisation(model_cpu, x, y, saliency, generator=g()),
          F.model_parameter_randomisation(model_gpu, xg, yg, saliency, generator=g()), atol=1e-3)  # fmt: skip
    assert next(model_gpu.parameters()).device.type == "cuda"


def test_pure_metrics_on_gpu(gpu):
    _, _, (x, y, a), (xg, yg, ag) = gpu
    mask = x > 0.3
    for fn in (F.relevance_mass_accuracy, F.relevance_mass_ratio, F.relevance_rank_accuracy, F.pointing_game):
        _same(fn(a, mask), fn(ag, mask.cuda()), atol=1e-6)
    _same(F.grid_pointing_game(a, torch.arange(6) % 4), F.grid_pointing_game(ag, torch.arange(6, device="cuda") % 4),
          atol=1e-6)  # fmt: skip
    _same(F.sparseness(a), F.sparseness(ag), atol=1e-6)
    _same(F.spearman(a, x), F.spearman(ag, xg), atol=1e-6)
