"""The model contract, checked on a few clean test images before any attack.

Each violated check raises a HarnessError that names the check and the fix. A randomised model is refused
unless the run uses ``--attack rand`` (then it is accepted and flagged).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from harness.core.errors import HarnessError

RANDOMISED = "randomised"


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    try:
        out = model(x)
    except HarnessError:
        raise
    except Exception as exc:
        raise HarnessError(
            f"model forward failed on a batch of shape {tuple(x.shape)}: {type(exc).__name__}: {exc}",
            "the model must accept float images in [0,1] of the data set's shape",
        ) from None
    if not isinstance(out, torch.Tensor):
        raise HarnessError(f"model returned {type(out).__name__}, not a tensor", "return a logits tensor")
    return out.detach().float()


@torch.no_grad()
def _check_outputs(model: nn.Module, x: torch.Tensor, num_classes: int, what: str) -> torch.Tensor:
    out = _forward(model, x)
    if tuple(out.shape) != (len(x), num_classes):
        raise HarnessError(
            f"contract check 'output shape': the model returned shape {tuple(out.shape)} for {what}, "
            f"expected ({len(x)}, {num_classes})",
            "return one row of logits per image, one column per class",
        )
    if not torch.isfinite(out).all():
        raise HarnessError(
            f"contract check 'finite outputs': the model returned NaN or infinite values for {what}",
            "fix the model's forward so that it returns finite logits",
        )
    return out


def check_contract(
    model: nn.Module, x: torch.Tensor, *, num_classes: int, device: torch.device, allow_randomised: bool = False
) -> list[str]:
    """Run every check on ``x`` ``(B, C, H, W)`` (B >= 1); return flags (``["randomised"]`` or ``[]``)."""
    x = x.to(device)
    out = _check_outputs(model, x, num_classes, "clean test images")
    for name, probe in (
        ("all-black images", torch.zeros_like(x[:2])),
        ("all-white images", torch.ones_like(x[:2])),
        ("uniform noise in [0,1]", torch.rand(x[:2].shape, generator=torch.Generator().manual_seed(0)).to(device)),
    ):
        _check_outputs(model, probe, num_classes, name)
    if out.min() > -1e-5 and out.max() < 1 + 1e-5 and ((out.sum(1) - 1).abs() < 1e-5).all():
        raise HarnessError(
            "contract check 'logits': the model's outputs are probabilities (rows in [0,1] summing to 1)",
            "return logits: drop the final softmax (AutoAttack needs logits)",
        )
    training = sorted(name or type(model).__name__ for name, m in model.named_modules() if m.training)
    if training:
        raise HarnessError(
            f"contract check 'eval mode': modules stay in training mode during evaluation ({', '.join(training[:3])})",
            "do not call .train() in forward; batch-norm and dropout must run in eval mode",
        )
    _check_no_gradients_in_forward(model, x[:2])
    flags: list[str] = []
    repeats = [_forward_nograd(model, x) for _ in range(3)]
    scale = 1e-5 * (1 + out.abs().max().item())
    if max((r - out).abs().max().item() for r in repeats) > scale:
        if not allow_randomised:
            raise HarnessError(
                "contract check 'deterministic': the model gives different outputs for the same input",
                "make the forward deterministic, or evaluate it with --attack rand",
            )
        flags.append(RANDOMISED)
    else:
        if len(x) == 1:  # one test image (--n-examples 1): check it in a batch with a noise image
            x = torch.cat([x, torch.rand(x.shape, generator=torch.Generator().manual_seed(2307)).to(device)])
            out = _forward_nograd(model, x)
        half = len(x) // 2
        parts = torch.cat([_forward_nograd(model, x[:half]), _forward_nograd(model, x[half:])])
        singles = torch.cat([_forward_nograd(model, x[i : i + 1]) for i in range(min(4, len(x)))])
        tolerance = 1e-4 * (1 + out.abs().max().item())
        if (parts - out).abs().max() > tolerance or (singles - out[: len(singles)]).abs().max() > tolerance:
            raise HarnessError(
                "contract check 'batch independence': an image's logits change with the other images in its batch",
                "use batch-norm in eval mode and no layer that mixes examples",
            )
    return flags


@torch.no_grad()
def _forward_nograd(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return _forward(model, x)


def _check_no_gradients_in_forward(model: nn.Module, x: torch.Tensor) -> None:
    """AutoAttack's dynamic-defence check (a forward that calls autograd), turned into an error."""
    from pyautoattack import checks

    for key in checks.funcs:
        checks.funcs[key] = 0
    logger = logging.getLogger("robint.contract")
    messages: list[str] = []
    handler = _ListHandler(messages)
    logger.addHandler(handler)
    try:
        checks.check_dynamic(model, x, False, logger=logger)
    finally:
        logger.removeHandler(handler)
    if messages:
        raise HarnessError(
            "contract check 'no gradients in forward': the forward pass computes gradients "
            "(a dynamic defence; AutoAttack's evaluation would be unreliable)",
            "remove autograd calls from forward",
        )


class _ListHandler(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def gradient_probe(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> dict[str, float]:
    """Numbers from which the parent judges gradient masking (harness.attack.sanity.masking_flags), on ``x``
    ``(B, C, H, W)`` with labels ``y``: the largest logit magnitude, the fraction of images whose cross-entropy
    input gradient is exactly zero (saturated softmax) or not finite, and the largest gradient element."""
    x = x.to(device).clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            logits = model(x)
            loss = nn.functional.cross_entropy(logits.float(), y.to(device), reduction="sum")
            (grad,) = torch.autograd.grad(loss, x)
    except Exception as exc:
        raise HarnessError(
            f"contract check 'gradients': the model's input gradients cannot be computed: {type(exc).__name__}: "
            f"{str(exc).strip()[:200]}",
            "the model must be differentiable (AutoAttack and the attributions need input gradients)",
        ) from None
    per_image = grad.detach().flatten(1)
    finite = torch.isfinite(per_image).all(1)
    magnitude = per_image.abs().nan_to_num(0.0, posinf=0.0, neginf=0.0)
    scale = logits.detach().abs().float()
    return {
        "logit_scale": float(scale[torch.isfinite(scale)].max()) if torch.isfinite(scale).any() else 0.0,
        "zero_gradient_fraction": float(((magnitude.amax(1) == 0) & finite).float().mean()),
        "gradient_scale": float(magnitude.max()),
        "nonfinite_gradient_fraction": float((~finite).float().mean()),
    }
