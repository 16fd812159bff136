"""Reference architectures (a registry of named constructors) used by the trainer and shipped models.

Each network is fully convolutional with global average pooling before the classifier, so it accepts
inputs larger than its training size (e.g. 2x2 composites for the grid pointing game) and still returns
exactly one row of logits per image. Inputs are in [0, 1]; normalisation happens inside the model.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from harness.core.errors import HarnessError
from metrics.registry_base import Registry

ARCHITECTURES: Registry[Callable[..., nn.Module]] = Registry("architecture", error=HarnessError)


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, inside the model (RobustBench's convention)."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MaxPool2x2(nn.MaxPool2d):
    """``nn.MaxPool2d(2)``, the same outputs and gradients, faster where no gradient flows on a CPU: there it takes
    the maximum of the four strided views of each 2x2 window (exact, so the same values bit for bit, NaN included),
    6-15x faster than PyTorch's CPU max-pool kernel on one thread, in which the forward-only passes of the metrics
    (perturbation curves, occlusion, reliability) spent a fifth of their time. Where a gradient is needed, or on
    another device, it is PyTorch's own (the gradient goes to each window's first maximum)."""

    def __init__(self) -> None:
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or (torch.is_grad_enabled() and x.requires_grad):
            return super().forward(x)
        h, w = x.shape[-2] - x.shape[-2] % 2, x.shape[-1] - x.shape[-1] % 2  # an odd last row or column is dropped
        rows = torch.maximum(x[..., 0:h:2, :w], x[..., 1:h:2, :w])
        return torch.maximum(rows[..., 0::2], rows[..., 1::2])


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]


class GapCNN(nn.Module):
    """Conv stages (two 3x3 convs, max-pool) then a conv, global average pooling and a linear layer."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: tuple[int, ...] = (32, 64),
        head_width: int = 128,
        mean: tuple[float, ...] = (0.286,),
        std: tuple[float, ...] = (0.353,),
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [Normalize(mean, std)]
        c = in_channels
        for width in widths:
            layers += _conv(c, width) + _conv(width, width) + [MaxPool2x2()]
            c = width
        layers += _conv(c, head_width)
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(head_width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


@ARCHITECTURES.register("gap-cnn")
def gap_cnn(in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """The shipped models' network: ~140k parameters, ~0.6 MB of float32 weights."""
    return GapCNN(in_channels, num_classes, widths=(32, 64), head_width=128)


@ARCHITECTURES.register("gap-cnn-wide")
def gap_cnn_wide(in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """A wider variant (~0.5M parameters) for users who want more capacity."""
    return GapCNN(in_channels, num_classes, widths=(48, 96), head_width=192)


class BasicBlock(nn.Module):
    """Two 3x3 convs with batch norm and an identity (or 1x1 strided) shortcut (He et al. 2016)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class GapResNet(nn.Module):
    """A small ResNet: a 3x3 stem, one basic block per stage (the first at stride 1, the others
    halving the resolution), global average pooling and a linear layer."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: tuple[int, ...] = (16, 32, 64),
        mean: tuple[float, ...] = (0.286,),
        std: tuple[float, ...] = (0.353,),
    ) -> None:
        super().__init__()
        stem = [nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
        blocks = [
            BasicBlock(c_in, c_out, 1 if i == 0 else 2)
            for i, (c_in, c_out) in enumerate(zip(widths[:1] + widths[:-1], widths, strict=True))
        ]
        self.features = nn.Sequential(Normalize(mean, std), *stem, *blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


@ARCHITECTURES.register("resnet8-gap")
def resnet8_gap(in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """The model zoo's second architecture: a stem and 3 basic blocks (widths 16/32/64, batch norm), global average
    pooling and a linear layer; ~78k parameters, ~0.3 MB of float32 weights."""
    return GapResNet(in_channels, num_classes, widths=(16, 32, 64))


def build(name: str, **kwargs: int) -> nn.Module:
    """Construct the registered architecture ``name``."""
    return ARCHITECTURES.get(name)(**kwargs)
