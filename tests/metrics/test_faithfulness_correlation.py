"""Faithfulness correlation: against Quantus's FaithfulnessCorrelation on the same subsets, and by hand."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from metrics.functional import faithfulness_correlation
from tests.metrics.conftest import ConstantLogits, LinearScore, record_numpy_random, run_quantus

TOL = 1e-5  # float32 scores on both sides, Pearson in float64 (ours) / scipy; observed ~1e-7


@pytest.mark.parametrize("softmax", [False, True])
def test_matches_quantus_on_its_subsets(softmax, standard_model, images, standard_saliency):
    x, y, a = images[0][:6], images[1][:6], standard_saliency[:6]
    n_runs, size = 12, 40
    metric = quantus.FaithfulnessCorrelation(nr_runs=n_runs, subset_size=size, perturb_baseline=0.0, normalise=False,
                                             return_aggregate=False, disable_warnings=True)  # fmt: skip
    with record_numpy_random("choice") as draws:
        q = run_quantus(metric, standard_model, x, y, a, softmax=softmax)
    subsets = torch.from_numpy(np.stack(draws).reshape(n_runs, 6, size)).transpose(0, 1).contiguous()
    ours = faithfulness_correlation(standard_model, x, a, y, subsets=subsets, baseline="black", softmax=softmax)
    np.testing.assert_allclose(ours.numpy(), q, atol=TOL, rtol=0)


def test_quantus_default_normalisation_does_not_matter(standard_model, images, standard_saliency):
    # Quantus divides attributions by the batch's max |a| (normalise=True); Pearson is scale-invariant.
    x, y, a = images[0][:4], images[1][:4], standard_saliency[:4]
    metric = quantus.FaithfulnessCorrelation(nr_runs=8, subset_size=30, return_aggregate=False, disable_warnings=True)
    with record_numpy_random("choice") as draws:
        q = run_quantus(metric, standard_model, x, y, a)
    subsets = torch.from_numpy(np.stack(draws).reshape(8, 4, 30)).transpose(0, 1).contiguous()
    ours = faithfulness_correlation(standard_model, x, a, y, subsets=subsets)  # defaults: black, logits
    np.testing.assert_allclose(ours.numpy(), q, atol=TOL, rtol=0)


def test_linear_model_exact_attributions_correlate_perfectly():
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(1, 6, 6, generator=g)
    x = torch.rand(3, 1, 6, 6, generator=g)
    # Logit = w . x, black baseline: the logit drop of subset S is exactly sum_{p in S} w_p x_p.
    out = faithfulness_correlation(LinearScore(weight), x, weight * x, torch.zeros(3, dtype=torch.int64), n_runs=20,
                                   subset_size=5, generator=g)  # fmt: skip
    np.testing.assert_allclose(out.numpy(), 1.0, atol=1e-6)
    anti = faithfulness_correlation(LinearScore(weight), x, -weight * x, torch.zeros(3, dtype=torch.int64), n_runs=20,
                                    subset_size=5, generator=g)  # fmt: skip
    np.testing.assert_allclose(anti.numpy(), -1.0, atol=1e-6)


def test_undefined_correlations_give_zero(standard_model, images):
    x, y = images[0][:3], images[1][:3]
    zero = faithfulness_correlation(standard_model, x, torch.zeros_like(x), y, n_runs=5, subset_size=10,
                                    generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.equal(zero, torch.zeros(3))
    blind = ConstantLogits([1.0, 2.0])
    out = faithfulness_correlation(blind, x, torch.rand(x.shape), torch.zeros(3, dtype=torch.int64), n_runs=5,
                                   subset_size=10)  # fmt: skip
    assert torch.equal(out, torch.zeros(3))


def test_drawn_subsets_determinism_and_batching(standard_model, images, standard_saliency):
    x, y, a = images[0][:5], images[1][:5], standard_saliency[:5]
    run = lambda seed, bs=256: faithfulness_correlation(standard_model, x, a, y, n_runs=6, subset_size=20,  # noqa: E731
                                                        baseline="uniform", batch_size=bs,
                                                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    first = run(0)
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))
    np.testing.assert_allclose(first.numpy(), run(0, bs=4).numpy(), atol=1e-6)
    # Batched == per example when each example gets the same subsets and baseline.
    subsets = torch.stack([torch.randperm(784, generator=torch.Generator().manual_seed(i))[:20] for i in range(6)])
    subsets = subsets.expand(5, 6, 20).contiguous()
    base = torch.rand(x.shape, generator=torch.Generator().manual_seed(9))
    full = faithfulness_correlation(standard_model, x, a, y, subsets=subsets, baseline=base)
    single = torch.cat([faithfulness_correlation(standard_model, x[i:i + 1], a[i:i + 1], y[i:i + 1],
                                                 subsets=subsets[i:i + 1], baseline=base[i:i + 1])
                        for i in range(5)])  # fmt: skip
    np.testing.assert_allclose(full.numpy(), single.numpy(), atol=1e-6)


def test_bad_arguments_raise(standard_model, images, standard_saliency):
    x, y, a = images[0][:2], images[1][:2], standard_saliency[:2]
    with pytest.raises(ValueError, match="subset_size"):
        faithfulness_correlation(standard_model, x, a, y, subset_size=784)
    with pytest.raises(ValueError, match="n_runs"):
        faithfulness_correlation(standard_model, x, a, y, n_runs=1)
    with pytest.raises(ValueError, match="subsets"):
        faithfulness_correlation(standard_model, x, a, y, subsets=torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="subsets"):
        faithfulness_correlation(standard_model, x, a, y, subsets=torch.full((2, 3, 4), 784))
    with pytest.raises(ValueError, match="NaN or infinite logits"):
        faithfulness_correlation(ConstantLogits([float("nan"), 1.0]), x, a, torch.zeros(2, dtype=torch.int64),
                                 n_runs=3, subset_size=4)  # fmt: skip
