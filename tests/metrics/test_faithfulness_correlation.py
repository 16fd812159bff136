"""Faithfulness correlation: against Quantus's FaithfulnessCorrelation on the same subsets, and by hand."""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from metrics.functional import faithfulness_correlation
from tests.metrics.conftest import ConstantLogits, LinearScore, record_numpy_random, run_quantus
from tests.metrics.rounding import (
    U32,
    U64,
    Float64,
    float64_per_image,
    gamma,
    logit_error_bound,
    metric_score_roundoff,
    pearson_error_bound,
    probability_errors,
)

# Tolerances. Quantus and ours run the same float64 copy of the model (rounding.Float64) on bitwise-identical
# images (black baseline), so the logits on either side are within E = rounding.logit_error_bound of the exact ones,
# for any input in [0, 1] and any summation order (about 7e-7 for the standard model). Our attribution sums and
# both Pearsons are float64. What remains is bounded per example by rounding.pearson_error_bound with
#   att sums: 2 (gamma_k + 1) u64 sum_S |a| (float64 sums of k terms on both sides, Quantus's after max-scaling),
#   drops:    2 (e_0 + e_r) (two scores per drop, two sides; e = E for logits, rounding.probability_errors for
#             probabilities) + 2 u_s (|s_0| + |s_r| + |d_r|) for storing the scores and subtracting them (on either
#             side: u_s = rounding.metric_score_roundoff(), float32 while metrics.functional._perturb stores scores
#             in float32; Quantus's float64 is smaller),
# with the exact scores s and drops d recomputed here in float64. Where the drops hardly vary (a confident
# prediction under softmax), the bound is large and says that the correlation is mostly rounding noise there.
# tests/metrics/test_devices.py uses the same bound for CPU against CUDA.


def subset_scores(model, x, y, subsets, softmax, base=None):
    """Float64 target scores ``(N, 1 + R)``: of each image, then with each subset's pixels (all channels) taken
    from ``base`` (default 0, the black baseline)."""
    n, r, k = subsets.shape
    c, h, w = x.shape[1:]
    mask = torch.zeros(n * r, h * w, dtype=torch.bool).scatter_(1, subsets.reshape(n * r, k).cpu(), True)
    x64 = x.double().cpu().repeat_interleave(r, 0)
    b64 = torch.zeros_like(x64) if base is None else base.double().cpu().repeat_interleave(r, 0)
    perturbed = torch.where(mask.reshape(-1, 1, h, w), b64, x64)
    with torch.no_grad():
        logits = Float64(model).cpu()(torch.cat([x.double().cpu(), perturbed]))
    values = logits.softmax(-1) if softmax else logits
    y = y.cpu()
    scores = values.gather(1, torch.cat([y, y.repeat_interleave(r)])[:, None]).squeeze(1)
    return torch.cat([scores[:n, None], scores[n:].reshape(n, r)], dim=1)


def correlation_tolerance(model, x, a, y, subsets, softmax, base=None):
    """Per-example bound ``(N,)`` on the difference of two faithfulness correlations (see above)."""
    n, r, k = subsets.shape
    bound = logit_error_bound(model, tuple(x.shape[1:]))
    s = subset_scores(model, x, y, subsets, softmax, base)
    e = probability_errors(s, bound) if softmax else torch.full_like(s, float(bound.error.max()))
    drops = s[:, :1] - s[:, 1:]
    u_s = metric_score_roundoff()
    d_drops = 2 * (e[:, :1] + e[:, 1:]) + 2 * u_s * (s[:, :1].abs() + s[:, 1:].abs() + drops.abs()) * (1 + 4 * u_s)
    picked = a.double().cpu().flatten(1).gather(1, subsets.reshape(n, -1).cpu()).reshape(n, r, k)
    d_att = 2 * (gamma(k, U64) + U64) * picked.abs().sum(-1)
    return pearson_error_bound(picked.sum(-1), d_att, drops, d_drops).numpy()


@pytest.mark.parametrize("softmax", [False, True])
def test_matches_quantus_on_its_subsets(softmax, standard_model, images, standard_saliency):
    x, y, a = images[0][:6], images[1][:6], standard_saliency[:6].double()
    n_runs, size = 12, 40
    metric = quantus.FaithfulnessCorrelation(
        nr_runs=n_runs,
        subset_size=size,
        perturb_baseline=0.0,
        normalise=False,
        return_aggregate=False,
        disable_warnings=True,
    )
    with record_numpy_random("choice") as draws:
        q = run_quantus(metric, Float64(standard_model), x, y, a, softmax=softmax)
    subsets = torch.from_numpy(np.stack(draws).reshape(n_runs, 6, size)).transpose(0, 1).contiguous()
    ours = faithfulness_correlation(
        Float64(standard_model), x.double(), a, y, subsets=subsets, baseline="black", softmax=softmax
    )
    tol = correlation_tolerance(standard_model, x, a, y, subsets, softmax)
    assert (tol < 1e-3).sum() >= 3  # a check that can still tell a wrong subset or score from rounding
    assert bool((np.abs(ours.numpy() - q) <= tol).all()), (ours.numpy() - q, tol)


def test_quantus_default_normalisation_does_not_matter(standard_model, images, standard_saliency):
    # Quantus divides attributions by the batch's max |a| (normalise=True); Pearson is scale-invariant.
    x, y, a = images[0][:4], images[1][:4], standard_saliency[:4].double()
    metric = quantus.FaithfulnessCorrelation(nr_runs=8, subset_size=30, return_aggregate=False, disable_warnings=True)
    with record_numpy_random("choice") as draws:
        q = run_quantus(metric, Float64(standard_model), x, y, a)
    subsets = torch.from_numpy(np.stack(draws).reshape(8, 4, 30)).transpose(0, 1).contiguous()
    ours = faithfulness_correlation(Float64(standard_model), x.double(), a, y, subsets=subsets)  # black, logits
    tol = correlation_tolerance(standard_model, x, a, y, subsets, softmax=False)
    assert bool((tol < 1e-3).all())
    assert bool((np.abs(ours.numpy() - q) <= tol).all()), (ours.numpy() - q, tol)


def test_linear_model_exact_attributions_correlate_perfectly():
    # float32 throughout, as in use. Logit = sum_p fl(w_p x_p) (36 terms), black baseline: the logit drop of subset
    # S is exactly the attribution sum sum_{p in S} fl(w_p x_p), so r = +-1 up to rounding: ours sums the 5
    # attributions of a subset in float32 (error <= gamma_4 u32 sum_S |a|) and the model sums 36 terms per logit
    # (<= gamma_35 u32 sum |a| each, two logits per drop, then a float32 subtraction: + u32 |drop|).
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(1, 6, 6, generator=g)
    x = torch.rand(3, 1, 6, 6, generator=g)
    a, target = weight * x, torch.zeros(3, dtype=torch.int64)
    subsets = torch.stack([torch.randperm(36, generator=g)[:5] for _ in range(60)]).reshape(3, 20, 5)
    att = a.double().flatten(1).gather(1, subsets.reshape(3, -1)).reshape(3, 20, 5).sum(-1)
    d_att = gamma(4, U32) * a.double().abs().flatten(1).gather(1, subsets.reshape(3, -1)).reshape(3, 20, 5).sum(-1)
    d_drops = (2 * gamma(35, U32) * a.double().abs().flatten(1).sum(1, keepdim=True) + U32 * att.abs()) * (1 + 2 * U32)
    tol = pearson_error_bound(att, d_att, att, d_drops).numpy()
    assert bool((tol < 1e-3).all())  # a check that can still tell a wrong subset from rounding
    out = faithfulness_correlation(LinearScore(weight), x, a, target, subsets=subsets)
    assert out.dtype == torch.float32 and bool((np.abs(out.numpy() - 1.0) <= tol + U32).all())  # + output rounding
    anti = faithfulness_correlation(LinearScore(weight), x, -a, target, subsets=subsets)
    assert bool((np.abs(anti.numpy() + 1.0) <= tol + U32).all())


def test_undefined_correlations_give_zero(standard_model, images):
    x, y = images[0][:3], images[1][:3]
    zero = faithfulness_correlation(
        standard_model, x, torch.zeros_like(x), y, n_runs=5, subset_size=10, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(zero, torch.zeros(3))
    blind = ConstantLogits([1.0, 2.0])
    out = faithfulness_correlation(
        blind, x, torch.rand(x.shape), torch.zeros(3, dtype=torch.int64), n_runs=5, subset_size=10
    )
    assert torch.equal(out, torch.zeros(3))


def test_drawn_subsets_determinism_and_batching(standard_model, images, standard_saliency):
    # batch_size only changes which images share a forward pass. A float32 model's logits depend on that in their
    # last bits (oneDNN picks other kernels for other batch sizes); a per-image float64 model's do not, so every
    # comparison below is exact by construction: 1e-12 only absorbs float64 kernel nondeterminism, were there any.
    model = float64_per_image(standard_model)
    x, y, a = images[0][:5].double(), images[1][:5], standard_saliency[:5].double()

    kw = dict(n_runs=6, subset_size=20, baseline="uniform")

    def run(seed, bs=256):
        return faithfulness_correlation(
            model, x, a, y, batch_size=bs, generator=torch.Generator().manual_seed(seed), **kw
        )

    first = run(0)
    assert first.dtype == torch.float64
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))
    np.testing.assert_allclose(first.numpy(), run(0, bs=4).numpy(), atol=1e-12, rtol=0)
    np.testing.assert_allclose(first.numpy(), run(0, bs=1).numpy(), atol=1e-12, rtol=0)
    # Batched == per example when each example gets the same subsets and baseline.
    subsets = torch.stack([torch.randperm(784, generator=torch.Generator().manual_seed(i))[:20] for i in range(6)])
    subsets = subsets.expand(5, 6, 20).contiguous()
    base = torch.rand(x.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    full = faithfulness_correlation(model, x, a, y, subsets=subsets, baseline=base)
    single = torch.cat(
        [
            faithfulness_correlation(
                model, x[i : i + 1], a[i : i + 1], y[i : i + 1], subsets=subsets[i : i + 1], baseline=base[i : i + 1]
            )
            for i in range(5)
        ]
    )
    np.testing.assert_allclose(full.numpy(), single.numpy(), atol=1e-12, rtol=0)


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
        faithfulness_correlation(
            ConstantLogits([float("nan"), 1.0]), x, a, torch.zeros(2, dtype=torch.int64), n_runs=3, subset_size=4
        )
