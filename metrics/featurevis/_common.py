"""Steps and checks shared by inversion and generation (private)."""

from __future__ import annotations

from torch import Tensor

from metrics.functional._checks import check_images


def relative_distance(rep: Tensor, rep_target: Tensor) -> Tensor:
    distance: Tensor = (rep - rep_target).norm(dim=1) / rep_target.norm(dim=1).clamp_min(1e-12)
    return distance


def unit_l2(grad: Tensor) -> Tensor:
    norm: Tensor = grad.flatten(1).norm(dim=1).clamp_min(1e-12)
    return grad / norm.view(-1, *([1] * (grad.ndim - 1)))


def project_l2(delta: Tensor, eps: float) -> Tensor:
    norm: Tensor = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = (eps / norm).clamp(max=1.0)
    return delta * factor.view(-1, *([1] * (delta.ndim - 1)))


def linear_schedule(steps: int, first: float, last: float | None) -> list[float]:
    if last is None or steps == 1:
        return [float(first)] * steps
    return [first + (last - first) * s / (steps - 1) for s in range(steps)]


def check_positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_pair(a: Tensor, b: Tensor, name_a: str, name_b: str) -> None:
    check_images(a, name_a)
    check_images(b, name_b)
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def check_unit_range(x: Tensor, name: str) -> None:
    if bool((x < 0).any()) or bool((x > 1).any()):
        raise ValueError(f"{name} must lie in [0, 1], got values in [{x.min().item():.3g}, {x.max().item():.3g}]")
