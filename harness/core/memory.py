"""``--batch-size auto``, on the worker's side: the largest batch that fits the device's memory, found by halving on
out-of-memory, for the attack's step (a forward and backward pass to the input, as APGD takes it) and for the
explain stage (each requested attribution method on a batch of test images).

Probing starts at the largest batch the run can use (the attack chunk; the explain stage's batch, at most the images
explained) and halves until a step runs; the parent decides what to do with the answer (harness.pipeline.batching).
Runs in the sandboxed worker: imports torch and metrics, never the database.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

_OOM_TEXT = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA's (or any accelerator's) out-of-memory error, Python's MemoryError, or the CPU allocator's failure under
    the worker's address-space limit (a RuntimeError).

    >>> is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory")), is_out_of_memory(ValueError("x"))
    (True, False)
    """
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc).lower() for text in _OOM_TEXT)


def largest_batch(step: Callable[[int], Any], start: int, device: torch.device) -> tuple[int, list[int]]:
    """The largest of ``start, start // 2, ..., 1`` for which ``step(batch)`` runs without running out of memory,
    and the batches that did not fit. Any other error is raised; so is running out of memory at batch 1.

    >>> def step(b):
    ...     if b > 5:
    ...         raise torch.OutOfMemoryError("CUDA out of memory")
    >>> largest_batch(step, 24, torch.device("cpu"))
    (3, [24, 12, 6])
    """
    batch, failed = max(1, int(start)), []
    while True:
        try:
            step(batch)
            _release(device)
            return batch, failed
        except Exception as exc:
            if not is_out_of_memory(exc) or batch == 1:
                raise
        # out of the except block: the traceback (and the tensors its frames hold) is released before the retry
        _release(device)
        failed.append(batch)
        batch //= 2


def fit_attack(model: nn.Module, x: torch.Tensor, chunk: int, device: torch.device) -> dict[str, Any]:
    """The largest batch, at most ``chunk``, for which the model's forward and backward pass to the input fits."""

    def step(batch: int) -> None:
        images = _images(x, batch).to(device).requires_grad_(True)
        with torch.enable_grad():
            logits = model(images)
            loss = nn.functional.cross_entropy(logits.float(), logits.detach().argmax(1))
            (grad,) = torch.autograd.grad(loss, images)
        del images, logits, loss, grad

    batch, failed = largest_batch(step, chunk, device)
    return {"batch": batch, "failed": failed}


def fit_explain(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    explainers: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]],
    upper: int,
    device: torch.device,
) -> dict[str, Any]:
    """The largest batch, at most ``upper``, on which every attribution method of ``explainers`` (name -> the
    suite's explain function) runs."""

    def step(batch: int) -> None:
        images, target = _images(x, batch).to(device), _images(y, batch).to(device)
        for explain in explainers.values():
            explain(model, images, target)

    batch, failed = largest_batch(step, upper, device)
    return {"batch": batch, "failed": failed}


def suite_explainers(suite: Any, background: torch.Tensor | None) -> dict[str, Callable]:
    """The explain function of each attribution method of ``suite`` (a metrics.suite.SuiteConfig) with the suite's
    options, as the explain stage calls them (controls left out: they are noise, drawn at once)."""
    from metrics.attribution import METHODS, explain

    out = {}
    for method in suite.methods:
        entry = METHODS.get(method)
        if entry.control:
            continue
        options = dict(suite.options_for(method))
        if entry.needs_background:
            options["background"] = background
        if entry.randomised:
            options["seed"] = suite.seed
        out[method] = lambda model, x, target, method=method, options=options: explain(
            model, x, target, method, **options
        )
    return out


def _images(x: torch.Tensor, batch: int) -> torch.Tensor:
    """``batch`` rows of ``x`` (repeated when it has fewer)."""
    reps = -(-batch // len(x))
    return (x.repeat(reps, *[1] * (x.dim() - 1)) if reps > 1 else x)[:batch]


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
