"""Rounding-error bounds that size the metric tests' tolerances, and model wrappers that keep the model's own
rounding out of the tests that check batching or compare with Quantus.

Why: a float32 result depends on the order of its sums, and kernels choose that order by batch size, thread count
and SIMD width (oneDNN picks different convolution kernels for a batch of 4 and of 256, so a model's per-image
logits differ in the last bits). A tolerance read off one machine can fail on another; these bounds hold for any
order.

Model of arithmetic (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed. 2002, eq. 2.4, lemma 3.1 and
eq. 3.5): every operation is exact then rounded with relative error <= u (u = 2^-24 in float32, 2^-53 in float64),
so a sum or dot product of k terms, evaluated in ANY order, with or without FMA, satisfies
``|fl(w . h) - w . h| <= gamma_k |w| . |h|`` with ``gamma_k = k u / (1 - k u)``.

Worst-case bounds of a CNN's float32 logits are useless (about 7 for logits of about 20 on the shipped models: the
error bound grows by |W| at every layer), while in float64 they are ~1e-6 for ANY input in [0, 1]: tests that
involve a model therefore run a float64 copy of it (:class:`Float64`) and derive their tolerances from
:func:`logit_error_bound`; tests of batching wrap it in :class:`PerImage`, which makes its per-image outputs
independent of the batch by construction.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

U32 = 2.0**-24  # unit roundoff of float32
U64 = 2.0**-53  # unit roundoff of float64


def gamma(k: int, u: float) -> float:
    """``k u / (1 - k u)``: the relative error bound of a sum of k + 1 terms (or a dot product of k terms)."""
    if k * u >= 1:
        raise ValueError(f"gamma_{k} is undefined for u = {u}")
    return k * u / (1 - k * u)


class Float64(nn.Module):
    """A float64 copy of ``model`` that accepts inputs of any float dtype (Quantus always feeds float32)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).double()
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.to(torch.float64))


class PerImage(nn.Module):
    """Runs ``model`` on one image at a time: every image goes through the same kernels with the same shapes,
    whatever the batch it arrives in, so its logits (and gradients) do not depend on the batch size."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.model(x[i : i + 1]) for i in range(x.shape[0])])


def float64_per_image(model: nn.Module) -> nn.Module:
    """The model for batching tests: float64 (so any leftover kernel nondeterminism is ~1e-16) and per image."""
    return PerImage(Float64(model))


class Bound(NamedTuple):
    """Per logit: ``magnitude`` >= |exact logit| and ``error`` >= |computed - exact logit|."""

    magnitude: Tensor
    error: Tensor


def _leaves(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if not list(m.children())]


@torch.no_grad()
def logit_error_bound(
    model: nn.Module, image_shape: tuple[int, ...], *, lo: float = 0.0, hi: float = 1.0, u: float = U64
) -> Bound:
    """Bounds ``(K,)`` on the logits of ``model`` evaluated with unit roundoff ``u``, valid for EVERY input in the
    box ``[lo, hi]^image_shape`` and every summation order (any CPU kernel, any batch size or thread count).

    Propagated layer by layer (first order in u is not assumed: gamma_k is exact): with ``M`` >= |h| and ``E`` >=
    |computed h - h| elementwise, a convolution or linear layer with k inputs per output gives
    ``E' = |W| E + gamma_{k+1} (|W| (M + E) + |b|)`` and ``M' = |W| M + |b|``; ReLU and max-pooling are
    1-Lipschitz and exact (E, M pass through their pooling); an average over n values adds ``gamma_{n+1}``; the
    input normalisation ``(x - mean) / std`` (two roundings) starts with ``E = gamma_2 M``. Supports the leaf
    modules of the shipped gap-cnn models (run in registration order, checked against ``model`` itself on a probe
    image); anything else raises TypeError.
    """
    dtype = torch.float64
    probe = lo + (hi - lo) * torch.rand((1, *image_shape), generator=torch.Generator().manual_seed(0), dtype=dtype)
    h = probe  # the probe's exact-ish activations: checks that the leaves reproduce the forward pass
    mag = torch.full((1, *image_shape), max(abs(lo), abs(hi)), dtype=dtype)
    err = torch.zeros_like(mag)
    try:
        for layer in _leaves(model):
            if isinstance(layer, nn.Conv2d | nn.Linear):
                w = layer.weight.detach().to(dtype)
                b = None if layer.bias is None else layer.bias.detach().to(dtype)
                b_abs = 0.0 if b is None else (b.abs().view(1, -1, 1, 1) if isinstance(layer, nn.Conv2d) else b.abs())
                k = w[0].numel() + (b is not None)
                err = _apply(layer, err, w.abs()) + gamma(k, u) * (_apply(layer, mag + err, w.abs()) + b_abs)
                mag = _apply(layer, mag, w.abs()) + b_abs
                h = _apply(layer, h, w, b)
            elif isinstance(layer, nn.ReLU):
                h = F.relu(h)
            elif isinstance(layer, nn.MaxPool2d):
                kw = dict(
                    kernel_size=layer.kernel_size,
                    stride=layer.stride,
                    padding=layer.padding,
                    dilation=layer.dilation,
                    ceil_mode=layer.ceil_mode,
                )
                h, mag, err = (F.max_pool2d(t, **kw) for t in (h, mag, err))
            elif isinstance(layer, nn.AdaptiveAvgPool2d) and layer.output_size in (1, (1, 1)):
                n = h.shape[2] * h.shape[3]
                err = err.mean(dim=(2, 3), keepdim=True) + gamma(n + 1, u) * (mag + err).mean(dim=(2, 3), keepdim=True)
                h, mag = h.mean(dim=(2, 3), keepdim=True), mag.mean(dim=(2, 3), keepdim=True)
            elif isinstance(layer, nn.Flatten):
                h, mag, err = h.flatten(1), mag.flatten(1), err.flatten(1)
            elif isinstance(getattr(layer, "mean", None), Tensor) and isinstance(getattr(layer, "std", None), Tensor):
                mean, std = layer.mean.to(dtype), layer.std.to(dtype)  # the models' Normalize: (x - mean) / std
                h = (h - mean) / std
                mag = (torch.maximum((lo - mean).abs(), (hi - mean).abs()) / std).expand_as(mag).clone()
                err = gamma(2, u) * mag
            else:
                raise TypeError(f"logit_error_bound does not support {type(layer).__name__}")
    except RuntimeError as exc:  # shapes that do not chain: the leaves run in another order than forward
        raise TypeError(
            "the model's leaf modules, run in registration order, do not reproduce its forward pass"
        ) from exc
    expected = Float64(model)(probe)
    if h.shape != expected.shape or not torch.allclose(h, expected, rtol=1e-9, atol=1e-9):
        raise TypeError("the model's leaf modules, run in registration order, do not reproduce its forward pass")
    return Bound(mag[0], err[0])


def _apply(layer: nn.Module, t: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """The conv or linear ``layer`` with weight ``w`` and bias ``b`` applied to ``t``."""
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1 or layer.padding_mode != "zeros":
            raise TypeError(f"logit_error_bound does not support {layer}")
        return F.conv2d(t, w, b, stride=layer.stride, padding=layer.padding, dilation=layer.dilation)
    return F.linear(t, w, b)


def probability_error_bound(bound: Bound, u: float = U64) -> float:
    """Bound on |computed - exact| softmax probability, from a :func:`logit_error_bound` of the same model.

    The softmax is 1/2-Lipschitz from the max-norm of the logits to each probability (row t of its Jacobian has
    absolute sum ``2 p_t (1 - p_t) <= 1/2``), so logit errors E move it by at most ``max E / 2``; its own arithmetic
    adds :func:`softmax_rel_error` of a value <= 1, with a logit range <= 2 max |logit|.
    """
    return 0.5 * float(bound.error.max()) + softmax_rel_error(2 * float(bound.magnitude.max()), bound.error.numel(), u)


def probability_errors(p: Tensor, bound: Bound, u: float = U64) -> Tensor:
    """Per-value bound on |computed - exact| softmax probability ``p`` (computed in float64 here), tighter than
    :func:`probability_error_bound` for confident predictions: row t of the softmax Jacobian has absolute sum
    ``2 p_t (1 - p_t)``, and along the segment between the exact and the computed logits (max-norm <= E) p_t moves
    by <= E / 2, so the error is <= ``2 (p (1 - p) + E) E`` plus the softmax's own arithmetic."""
    e = float(bound.error.max())
    rel = softmax_rel_error(2 * float(bound.magnitude.max()), bound.error.numel(), u)
    return 2 * (p * (1 - p) + e) * e + rel * p


def metric_score_roundoff() -> float:
    """Unit roundoff of the scores inside the perturbation metrics for a float64 model: ``U32`` while
    ``metrics.functional._perturb`` stores them in float32 (``model_scores`` and the ``curves`` table), ``U64``
    once it keeps the model's dtype. Tolerances use it so they tighten by themselves when that changes."""
    from metrics.functional import perturbation_curve
    from metrics.functional._perturb import model_scores

    x = torch.tensor([[[[0.25, 0.5]]]], dtype=torch.float64)
    target = torch.zeros(1, dtype=torch.int64)
    scores = model_scores(nn.Flatten(), iter([(x, target)]), softmax=False)
    curve = perturbation_curve(nn.Flatten(), x, x, target, order="morf", mode="deletion", baseline="black")
    return U64 if scores.dtype == curve.dtype == torch.float64 else U32


def pearson_error_bound(a: Tensor, da: Tensor | float, b: Tensor, db: Tensor | float) -> Tensor:
    """Bound on ``|pearson(a', b') - pearson(a, b)|`` for ``|a' - a| <= da`` and ``|b' - b| <= db`` elementwise,
    rows along the last dim: ``2 ||da|| / ||a - mean a|| + 2 ||db|| / ||b - mean b||``.

    Pearson's r is the inner product of the centred, normalised rows; centring is an orthogonal projection (does
    not lengthen a perturbation), ``||v/|v| - w/|w| || <= 2 |v - w| / |v|``, and ``|<x, y> - <x', y'>| <= |x - x'| +
    |y - y'|`` for unit vectors. Rows constant in a or b give inf (the correlation is ill-conditioned there).
    """
    a, b = a.double(), b.double()
    da = torch.as_tensor(da, dtype=torch.float64).expand_as(a)
    db = torch.as_tensor(db, dtype=torch.float64).expand_as(b)
    spread_a = (a - a.mean(dim=-1, keepdim=True)).norm(dim=-1)
    spread_b = (b - b.mean(dim=-1, keepdim=True)).norm(dim=-1)
    bound = 2 * da.norm(dim=-1) / spread_a + 2 * db.norm(dim=-1) / spread_b
    return torch.where((spread_a > 0) & (spread_b > 0), bound, torch.inf)


def softmax_rel_error(logit_range: float, k: int, u: float) -> float:
    """Relative error bound of a softmax probability computed from given logits with unit roundoff u: the shift
    ``z - max`` moves the exponent by <= u * range, exp adds <= 2u (1 ulp), the sum of k terms adds gamma_k and the
    division (or reciprocal and product) 2u, in the numerator and the denominator: ``(2 range + k + 8) u``, to
    first order (the second-order terms are < 1% of it for range * u < 1e-3)."""
    return 1.01 * (2 * logit_range + k + 8) * u
