"""Attribution methods behind one call shape: ``explain(model, x, target, method, **kw) -> attributions``.

Every method is gradient-only (captum's Saliency, InputXGradient, IntegratedGradients, NoiseTunnel,
GradientShap; shap's GradientExplainer), so it works on any differentiable architecture, in-place ReLUs and
reused modules included. Hook-based methods (DeepLift, LRP, guided backprop) are deliberately not offered:
on such architectures they can return wrong numbers without an error.

Shapes: x ``(N, C, H, W)`` in [0,1], target int64 ``(N,)``; attributions ``(N, C, H, W)`` on x's device.
Randomised methods take ``seed`` and leave the global RNG state untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from metrics._registry import Registry
from metrics.controls import control_blur, control_edges, control_input, control_inverse, control_random

Output = Literal["logit", "probability"]


@dataclass(frozen=True)
class AttributionMethod:
    """A registered method: ``fn(model, x, target, **kw)``; ``needs_background`` = wants training images;
    ``control`` = a control (metrics/controls.py: attributions that carry nothing of the model), not a method."""

    name: str
    fn: Callable[..., torch.Tensor]
    description: str
    randomised: bool = False
    needs_background: bool = False
    control: bool = False


METHODS: Registry[AttributionMethod] = Registry("attribution method")


def register(
    name: str, description: str, *, randomised: bool = False, needs_background: bool = False, control: bool = False
):
    def decorator(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        METHODS.add(name, AttributionMethod(name, fn, description, randomised, needs_background, control))
        return fn

    return decorator


def explain(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str, **kwargs: Any) -> torch.Tensor:
    """Attributions ``(N, C, H, W)`` of ``model`` for ``target`` ``(N,)`` at ``x`` ``(N, C, H, W)`` by ``method``."""
    entry = METHODS.get(method)
    if x.dim() != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
    target = torch.as_tensor(target, device=x.device).long().reshape(-1)
    if target.shape != (x.shape[0],):
        raise ValueError(f"target must have shape ({x.shape[0]},), got {tuple(target.shape)}")
    was_training = model.training
    model.eval()
    try:
        attributions = entry.fn(model, x.detach(), target, **kwargs)
    finally:
        model.train(was_training)
    return attributions.detach().to(x.device, torch.float32).reshape(x.shape)


def _captum() -> Any:
    """``captum.attr``, imported on first use: processes that only read the registry (the parent, a worker that
    only classifies) skip its import (and the matplotlib it pulls in)."""
    import captum.attr

    return captum.attr


def _forward(model: nn.Module, output: Output) -> nn.Module:
    if output == "logit":
        return model
    if output == "probability":
        return nn.Sequential(model, nn.Softmax(dim=1))
    raise ValueError(f"output must be 'logit' or 'probability', got {output!r}")


def match_background(background: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Background images at x's spatial size: tiled (k x k, rolled copies) for k-times larger inputs such as
    2x2 composites, else resized. ``(B, C, h, w) -> (B, C, H, W)``."""
    background = background.to(x.device, x.dtype)
    (h, w), (big_h, big_w) = background.shape[2:], x.shape[2:]
    if (h, w) == (big_h, big_w):
        return background
    if big_h % h == 0 and big_w % w == 0 and big_h // h == big_w // w:
        k = big_h // h
        rows = [torch.cat([background.roll(r * k + c, dims=0) for c in range(k)], dim=3) for r in range(k)]
        return torch.cat(rows, dim=2)
    return torch.nn.functional.interpolate(background, size=(big_h, big_w), mode="bilinear", align_corners=False)


@contextmanager
def _seeded(seed: int, device: torch.device):
    """Seed torch (and NumPy) for the block without changing the caller's RNG state afterwards."""
    devices = [device] if device.type == "cuda" else []
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)


@register("saliency", "|gradient| of the target logit (Simonyan et al. 2014)")
def saliency(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, output: Output = "logit", abs: bool = True):
    return _captum().Saliency(_forward(model, output)).attribute(x, target=target, abs=abs)


@register("input_x_gradient", "input times gradient of the target logit (Shrikumar et al. 2016)")
def input_x_gradient(model: nn.Module, x: torch.Tensor, target: torch.Tensor, *, output: Output = "logit"):
    return _captum().InputXGradient(_forward(model, output)).attribute(x, target=target)


@register("integrated_gradients", "Integrated Gradients (Sundararajan et al. 2017)", randomised=True)
def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    baseline: Literal["black", "uniform"] = "uniform",
    n_trials: int = 10,
    n_steps: int = 50,
    output: Output = "logit",
    internal_batch_size: int = 512,
    seed: int = 0,
):
    """IG from a black image, or averaged over ``n_trials`` U[0,1] baselines (the seed paper's setting)."""
    ig = _captum().IntegratedGradients(_forward(model, output))
    if baseline == "black":
        return ig.attribute(
            x, torch.zeros_like(x), target=target, n_steps=n_steps, internal_batch_size=internal_batch_size
        )
    if baseline != "uniform":
        raise ValueError(f"baseline must be 'black' or 'uniform', got {baseline!r}")
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros_like(x)
    for _ in range(n_trials):
        base = torch.rand(x.shape, generator=generator).to(x.device)
        total += ig.attribute(x, base, target=target, n_steps=n_steps, internal_batch_size=internal_batch_size)
    return total / n_trials


@register("smoothgrad", "SmoothGrad: saliency averaged over Gaussian noise (Smilkov et al. 2017)", randomised=True)
def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    nt_samples: int = 25,
    stdev: float = 0.15,
    output: Output = "logit",
    seed: int = 0,
):
    attr = _captum()
    tunnel = attr.NoiseTunnel(attr.Saliency(_forward(model, output)))
    with _seeded(seed, x.device):
        return tunnel.attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=nt_samples,
            stdevs=stdev,
            target=target,
            nt_samples_batch_size=max(1, 4096 // max(1, len(x))),
        )


@register(
    "gradient_shap", "GradientSHAP with a training-image background (captum)", randomised=True, needs_background=True
)
def gradient_shap(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    background: torch.Tensor,
    n_samples: int = 50,
    stdev: float = 0.0,
    output: Output = "logit",
    seed: int = 0,
):
    explainer = _captum().GradientShap(_forward(model, output))
    with _seeded(seed, x.device):
        return explainer.attribute(
            x, baselines=match_background(background, x), n_samples=n_samples, stdevs=stdev, target=target
        )


@register(
    "expected_gradients",
    "shap.GradientExplainer (expected gradients), the seed paper's SHAP",
    randomised=True,
    needs_background=True,
)
def expected_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    background: torch.Tensor,
    n_samples: int = 200,
    output: Output = "logit",
    batch_size: int = 200,
    seed: int = 0,
):
    """Explains only each example's target class, on that class's examples: one explainer whose model keeps the
    class's output column (its constructor forwards the whole background once; the column is switched per class, so
    the values are those of one explainer per class)."""
    import shap

    background = match_background(background, x)
    selected = _SelectOutput(_forward(model, output), 0)
    explainer = None
    out = torch.zeros_like(x)
    np_state = np.random.get_state()
    try:
        for cls in torch.unique(target).tolist():
            rows = (target == cls).nonzero().flatten()
            selected.column = int(cls)
            if explainer is None:
                explainer = shap.GradientExplainer(selected, background, batch_size=batch_size)
            values = explainer.shap_values(x[rows], nsamples=n_samples, rseed=seed)
            out[rows] = torch.as_tensor(np.asarray(values), dtype=x.dtype, device=x.device).reshape(x[rows].shape)
    finally:
        np.random.set_state(np_state)
    return out


_RANDOM_CONTROL = "control: U[0,1) noise, independent of model and input (metrics/controls.py)"
_INPUT_CONTROL = "control: input x U[0,1) noise, the input's structure without the model (metrics/controls.py)"
_MODEL_FREE = "a map of the input alone (tiny seeded jitter breaks ties; metrics/controls.py)"
register("control_random", _RANDOM_CONTROL, randomised=True, control=True)(control_random)
register("control_input", _INPUT_CONTROL, randomised=True, control=True)(control_input)
register("control_inverse", f"control: 1 - x, {_MODEL_FREE}", randomised=True, control=True)(control_inverse)
register("control_blur", f"control: Gaussian-blurred x, {_MODEL_FREE}", randomised=True, control=True)(control_blur)
register("control_edges", f"control: Sobel edges of x, {_MODEL_FREE}", randomised=True, control=True)(control_edges)


class _SelectOutput(nn.Module):
    """Keeps one output column, so shap explains exactly that class."""

    def __init__(self, model: nn.Module, column: int) -> None:
        super().__init__()
        self.model, self.column = model, column

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[:, self.column : self.column + 1]
