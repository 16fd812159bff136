"""Argument validation shared by the metrics: every check raises ``ValueError`` naming the argument."""

from __future__ import annotations

import torch
from torch import Tensor


def describe(value: object) -> str:
    """A short description of ``value`` for error messages (shape and dtype for tensors)."""
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"


def check_images(x: object, name: str = "x") -> Tensor:
    """``x`` must be a finite float tensor ``(N, C, H, W)`` with N >= 1."""
    if not isinstance(x, Tensor) or x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of shape (N, C, H, W), got {describe(x)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} holds no examples (N = 0)")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def check_target(target: object, n: int, device: torch.device) -> Tensor:
    """``target`` must be int64 ``(N,)`` with non-negative class indices; returned on ``device``."""
    if not isinstance(target, Tensor) or target.dtype != torch.int64 or tuple(target.shape) != (n,):
        raise ValueError(f"target must be an int64 tensor of shape ({n},), got {describe(target)}")
    if bool((target < 0).any()):
        raise ValueError("target contains negative class indices")
    return target.to(device)


def check_finite(t: Tensor, name: str) -> Tensor:
    if not t.is_floating_point():
        t = t.float()
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def pixel_map(attributions: object, x_shape: torch.Size | tuple[int, ...], name: str = "attributions") -> Tensor:
    """Per-pixel map ``(N, H, W)``: attributions ``(N, C, H, W)`` or ``(N, 1, H, W)`` summed over channels,
    or ``(N, H, W)`` as is."""
    a = channel_attributions(attributions, x_shape, name)
    return a.sum(dim=1)


def channel_attributions(
    attributions: object, x_shape: torch.Size | tuple[int, ...], name: str = "attributions"
) -> Tensor:
    """Attributions as ``(N, C', H, W)`` with C' in {1, C}, broadcastable to x; ``(N, H, W)`` gains C' = 1."""
    n, c, h, w = x_shape
    allowed = f"({n}, {c}, {h}, {w}), ({n}, 1, {h}, {w}) or ({n}, {h}, {w})"
    if not isinstance(attributions, Tensor):
        raise ValueError(f"{name} must be a tensor of shape {allowed}, got {describe(attributions)}")
    a = attributions
    if a.ndim == 3 and tuple(a.shape) == (n, h, w):
        a = a.unsqueeze(1)
    if a.ndim != 4 or a.shape[0] != n or tuple(a.shape[2:]) != (h, w) or a.shape[1] not in (1, c):
        raise ValueError(f"{name} must have shape {allowed} to match x, got {tuple(attributions.shape)}")
    return check_finite(a, name)


def pixel_mask(mask: object, n: int, h: int, w: int, name: str = "mask") -> Tensor:
    """Boolean mask ``(N, H, W)`` from ``(N, 1, H, W)`` or ``(N, H, W)``; non-bool masks must hold only 0 and 1."""
    if not isinstance(mask, Tensor):
        raise ValueError(
            f"{name} must be a bool tensor of shape ({n}, 1, {h}, {w}) or ({n}, {h}, {w}), got {describe(mask)}"
        )
    m = mask.squeeze(1) if mask.ndim == 4 and mask.shape[1] == 1 else mask
    if tuple(m.shape) != (n, h, w):
        raise ValueError(f"{name} must have shape ({n}, 1, {h}, {w}) or ({n}, {h}, {w}), got {tuple(mask.shape)}")
    if m.dtype != torch.bool:
        if not bool(((m == 0) | (m == 1)).all()):
            raise ValueError(f"{name} must be boolean (or hold only 0 and 1), got values outside {{0, 1}}")
        m = m != 0
    return m


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return str(value)


def check_generator(generator: object) -> torch.Generator | None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {describe(generator)}")
    return generator
