"""Control attributions: maps that carry nothing of the model, scored like a method to calibrate the metrics.

- ``control_random``: ``a = u`` with ``u ~ U[0, 1)`` i.i.d. per element; depends on neither model nor input
  (only on x's shape). Its scores are the chance levels of the metrics: relevance mass ratio 1 and pointing
  game = the object's share of the image in expectation, Gini index ~1/3.
- ``control_input``: ``a = (x - 0) * u``, the input times U[0, 1) noise, i.e. gradient x input (= integrated
  gradients from a black baseline) with the model's gradient replaced by model-independent non-negative noise.
  It carries the input's structure and nothing of the model: on Fashion-MNIST (black background) its
  attribution lies on the object by construction, so the localisation metrics score it as high as
  gradient x input does. A method x metric that this control matches is trivial for that metric.
- Model-free maps of the input, each plus ``JITTER * u`` (the same ``u``) only to break ties at random instead of
  by pixel index: ``control_inverse`` ``1 - x`` (dark pixels, i.e. Fashion-MNIST's background, first),
  ``control_blur`` a Gaussian blur of x (sigma ``BLUR_SIGMA`` pixels, per channel), ``control_edges`` the Sobel
  gradient magnitude of x (per channel). Under a U[0,1] fill, replacing the black background by noise moves a
  model more than replacing object pixels, so ``1 - x`` scores well on ABPC without any model: a method must beat
  the best of these maps (``metrics.bar``), not only the two above.

Both are seeded: the same ``seed`` gives the same noise for the same shape on any device (drawn on CPU), so the
explanation of a randomised copy of the model equals the original one and model parameter randomisation scores
1.0 on every image (the control fails the sanity check, as it must). :func:`control_explainer` instead draws
fresh noise at every call; with it, MPRT measures only the input structure shared by two independent draws:
the score an explanation whose model factor is completely replaced by randomisation would still get.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from metrics.functional._checks import check_generator, check_images

ControlName = Literal["control_random", "control_input", "control_inverse", "control_blur", "control_edges"]
CONTROLS: tuple[str, ...] = ("control_random", "control_input", "control_inverse", "control_blur", "control_edges")
INPUT_CONTROLS: tuple[str, ...] = CONTROLS[1:]  # the controls that carry the input's structure
JITTER = 1e-6  # scale of the tie-breaking noise of the model-free maps (maps of order 1)
BLUR_SIGMA = 2.0  # pixels


def _noise(x: Tensor, generator: torch.Generator) -> Tensor:
    return torch.rand(x.shape, generator=generator, device=generator.device, dtype=x.dtype).to(x.device)


def _spatial(x: Tensor, fn: Callable[..., np.ndarray], **kwargs) -> Tensor:
    """``fn`` (a scipy.ndimage filter) applied to every image and channel, in float64, as x's dtype and device."""
    out = np.stack([fn(plane, **kwargs) for plane in x.detach().cpu().double().reshape(-1, *x.shape[2:]).numpy()])
    return torch.as_tensor(out).reshape(x.shape).to(device=x.device, dtype=x.dtype)


def _sobel_magnitude(plane: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return np.hypot(ndimage.sobel(plane, axis=0, mode="nearest"), ndimage.sobel(plane, axis=1, mode="nearest"))


def _model_free_map(name: str, x: Tensor) -> Tensor:
    from scipy import ndimage

    if name == "control_inverse":
        return 1 - x
    if name == "control_blur":
        return _spatial(x, ndimage.gaussian_filter, sigma=BLUR_SIGMA, mode="nearest")
    return _spatial(x, _sobel_magnitude)


def _draw(name: str, x: Tensor, generator: torch.Generator) -> Tensor:
    if name not in CONTROLS:
        raise ValueError(f"name must be one of {', '.join(map(repr, CONTROLS))}; got {name!r}")
    check_images(x)
    u = _noise(x, generator)
    if name == "control_random":
        return u
    if name == "control_input":
        return x * u
    return _model_free_map(name, x) + JITTER * u


def control_random(model: nn.Module | None, x: Tensor, target: Tensor | None = None, *, seed: int = 0) -> Tensor:
    """Random attributions ``u ~ U[0, 1)`` i.i.d. per element, shape of x ``(N, C, H, W)``; model, input values
    and target are ignored. Drawn on CPU from ``torch.Generator().manual_seed(seed)``, then moved to x's device.

    Example:
        >>> control_random(None, torch.zeros(2, 1, 3, 3), seed=0).shape
        torch.Size([2, 1, 3, 3])
    """
    return _draw("control_random", x, torch.Generator().manual_seed(seed))


def control_input(model: nn.Module | None, x: Tensor, target: Tensor | None = None, *, seed: int = 0) -> Tensor:
    """Input-structured attributions ``(x - 0) * u``, ``u ~ U[0, 1)`` i.i.d. per element (the same noise as
    :func:`control_random` for the same seed), shape of x ``(N, C, H, W)``; model and target are ignored.
    Non-negative for x in [0, 1]; zero wherever x is.

    Example:
        >>> control_input(None, torch.tensor([[[[0.0, 1.0]]]]), seed=0)
        tensor([[[[0.0000, 0.7682]]]])
    """
    return _draw("control_input", x, torch.Generator().manual_seed(seed))


def control_inverse(model: nn.Module | None, x: Tensor, target: Tensor | None = None, *, seed: int = 0) -> Tensor:
    """``1 - x + JITTER * u`` (u as in :func:`control_random` for the same seed), shape of x ``(N, C, H, W)``: dark
    pixels first (on Fashion-MNIST, the background); model and target are ignored.

    Example:
        >>> control_inverse(None, torch.tensor([[[[0.0, 1.0]]]]), seed=0).round(decimals=4)
        tensor([[[[1., 0.]]]])
    """
    return _draw("control_inverse", x, torch.Generator().manual_seed(seed))


def control_blur(model: nn.Module | None, x: Tensor, target: Tensor | None = None, *, seed: int = 0) -> Tensor:
    """x blurred by a Gaussian of ``BLUR_SIGMA`` pixels per channel (``scipy.ndimage.gaussian_filter``, "nearest"
    borders) ``+ JITTER * u``, shape of x ``(N, C, H, W)``; model and target are ignored.

    Example:
        >>> float(control_blur(None, torch.ones(1, 1, 5, 5), seed=0).min().round(decimals=4))
        1.0
    """
    return _draw("control_blur", x, torch.Generator().manual_seed(seed))


def control_edges(model: nn.Module | None, x: Tensor, target: Tensor | None = None, *, seed: int = 0) -> Tensor:
    """The Sobel gradient magnitude of x per channel (``scipy.ndimage.sobel`` along rows and columns, "nearest"
    borders, ``hypot``) ``+ JITTER * u``, shape of x ``(N, C, H, W)``: edges first; model and target are ignored.

    Example:
        >>> float(control_edges(None, torch.ones(1, 1, 5, 5), seed=0).max()) < 1e-5
        True
    """
    return _draw("control_edges", x, torch.Generator().manual_seed(seed))


def control_explainer(
    name: ControlName, *, generator: torch.Generator
) -> Callable[[nn.Module, Tensor, Tensor], Tensor]:
    """An explain function ``(model, x, target) -> attributions`` of the control ``name`` that draws fresh noise
    from ``generator`` at every call (the generator advances), for metrics that explain several models or
    inputs and should see independent control draws (e.g. the input-structure floor of MPRT)."""
    if name not in CONTROLS:
        raise ValueError(f"name must be one of {', '.join(map(repr, CONTROLS))}; got {name!r}")
    check_generator(generator)
    if generator is None:
        raise ValueError("generator must be a torch.Generator, got None")

    def explain_fn(model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
        return _draw(name, x, generator)

    return explain_fn
