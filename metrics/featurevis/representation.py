"""The penultimate representation of a classifier, as a differentiable function ``x -> (N, D)``.

Contract for submissions: a model MAY define a method ``representation(x) -> Tensor (N, D)`` returning the
representation its classifier head reads (the penultimate layer), for inputs ``(N, C, H, W)`` in [0, 1], as
``forward`` takes them (normalisation included). It must be differentiable with respect to ``x``. A wrapper
(a module with an inner ``.model``) may leave it to the inner model when it passes its input on unchanged.

Without that method the representation is the input of the LAST ``nn.Linear`` (in registration order, as
``model.named_modules()`` lists them), captured by a forward hook during an ordinary forward pass and
flattened to ``(N, D)``. For the shipped ``gap-cnn`` models that is the 128-d globally pooled feature vector
``model.pool(model.features(x))`` read by ``model.classifier``. Note: ``GapCNN.features`` is the convolutional
stack (a ``nn.Sequential``), not a representation method, which is why the contract uses another name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import Tensor, nn

REPRESENTATION_METHOD = "representation"

RepresentationFn = Callable[[Tensor], Tensor]


class RepresentationUnavailable(Exception):
    """The model exposes no penultimate representation; ``reason`` says why (report the metric as skipped)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _representation_method(module: nn.Module) -> Callable[[Tensor], Tensor] | None:
    """``module.representation`` if it is a real method (not a submodule or other attribute of that name)."""
    attr = getattr(module, REPRESENTATION_METHOD, None)
    if attr is None or isinstance(attr, nn.Module) or not inspect.ismethod(attr):
        return None
    return attr


def representation_fn(model: nn.Module) -> tuple[RepresentationFn, str]:
    """A function ``x (N, C, H, W) -> (N, D)`` giving ``model``'s penultimate representation, and how it is read.

    Order of preference: ``model.representation(x)``; the inner ``model.model.representation(x)`` of a wrapper;
    a forward hook on the input of the last ``nn.Linear`` of ``model`` (flattened). The returned function keeps
    the autograd graph (inversion differentiates through it); wrap calls in ``torch.no_grad()`` to score.

    Args:
        model: an ``nn.Module`` returning logits, in eval mode.

    Returns:
        ``(fn, how)``: ``how`` is e.g. ``"model.representation(x)"`` or
        ``"forward hook on the input of classifier (nn.Linear 128 -> 10)"``.

    Raises:
        ValueError: if ``model`` is not an ``nn.Module``.
        RepresentationUnavailable: if the model has neither the method nor any ``nn.Linear``; calling ``fn``
            raises it too when the hooked layer does not run during ``forward``.

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> fn, how = representation_fn(net)
        >>> how
        'forward hook on the input of 3 (nn.Linear 3 -> 2)'
        >>> fn(torch.zeros(5, 1, 2, 2)).shape
        torch.Size([5, 3])
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    method = _representation_method(model)
    if method is not None:
        return _checked(method, f"model.{REPRESENTATION_METHOD}(x)"), f"model.{REPRESENTATION_METHOD}(x)"
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module):
        method = _representation_method(inner)
        if method is not None:
            how = f"model.model.{REPRESENTATION_METHOD}(x) (wrapped model)"
            return _checked(method, how), how
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise RepresentationUnavailable(
            f"{type(model).__name__} defines no {REPRESENTATION_METHOD}(x) method and contains no nn.Linear "
            "whose input could serve as the penultimate representation"
        )
    name, layer = linears[-1]
    how = f"forward hook on the input of {name or 'model'} (nn.Linear {layer.in_features} -> {layer.out_features})"
    return _hooked(model, layer, how), how


def _checked(method: Callable[[Tensor], Tensor], how: str) -> RepresentationFn:
    def fn(x: Tensor) -> Tensor:
        out = method(x)
        if not isinstance(out, Tensor) or out.ndim < 1 or out.shape[0] != x.shape[0]:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise RepresentationUnavailable(f"{how} returned {shape} for {x.shape[0]} inputs, not (N, D)")
        return out.flatten(1)

    return fn


def _hooked(model: nn.Module, layer: nn.Linear, how: str) -> RepresentationFn:
    def fn(x: Tensor) -> Tensor:
        captured: list[Tensor] = []

        def hook(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            captured.append(inputs[0])

        handle = layer.register_forward_pre_hook(hook)
        try:
            model(x)
        finally:
            handle.remove()
        if not captured:
            raise RepresentationUnavailable(f"{how}: that layer did not run during the model's forward pass")
        rep = captured[-1]
        if rep.shape[0] != x.shape[0]:
            raise RepresentationUnavailable(
                f"{how}: its input has shape {tuple(rep.shape)}, not one row per image ({x.shape[0]})"
            )
        return rep.flatten(1)

    return fn


__all__ = ["REPRESENTATION_METHOD", "RepresentationFn", "RepresentationUnavailable", "representation_fn"]
