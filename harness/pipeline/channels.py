"""The channels to a run's workers: a sandboxed subprocess with its resource limits, or the parent's own process with
``--trusted`` (harness.worker.channel). The time each step may take is harness.pipeline.budgets."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.errors import HarnessError


@dataclass(frozen=True)
class WorkerLimits:
    """How the parent runs a run's workers: in its own process (``trusted``) or sandboxed, on which ``device``, with
    progress bars or not, and the sandbox's limits (README, Security model)."""

    trusted: bool = False
    device: str = "auto"
    progress: bool = True
    memory_limit: str = "auto"  # auto, none, or a size such as 8G (memory_bytes)
    cpu_limit: int | None = None  # CPU seconds
    stall_timeout: float = 600.0
    timeout: float | None = None  # the run's wall-clock limit: None derives it from the budgets, inf lifts it


def open_channel(limits: WorkerLimits, read: list[Path], *, required: tuple[Path, ...] = ()):
    """The channel to a new worker that may read the directories ``read`` (the submission's or the zoo's, and the
    data directory for the worker that attacks); ``required`` must stay readable for it too (as root it runs as
    ``nobody``). A sandboxed worker runs the parent's thread count (harness.threads)."""
    from harness.threads import decide, thread_env
    from harness.worker.channel import InProcessChannel, SubprocessChannel

    if limits.trusted:
        return InProcessChannel()
    memory = memory_bytes(limits.memory_limit)
    cuda = limits.device.startswith("cuda") or (limits.device == "auto" and torch.cuda.is_available())
    kind = "data" if cuda else "address_space"
    return SubprocessChannel(
        read_paths=list(read),
        required_paths=[*read, *required],
        memory_bytes=memory,
        memory_limit_kind=kind,
        cpu_seconds=limits.cpu_limit,
        stall_timeout=limits.stall_timeout,
        timeout=None if limits.timeout is None or math.isinf(limits.timeout) else limits.timeout,
        progress=limits.progress,
        pid_namespace=not cuda,  # CUDA fails to initialise in a PID namespace (harness.worker.containment.supervise)
        env=thread_env(decide()),  # the parent's thread count (harness.threads): every worker gets the same
    )


def memory_bytes(text: str) -> int | None:
    """``auto`` (16 GiB or 75% of RAM, whichever is less), ``none``, or a size such as ``8G``/``512M``.

    >>> memory_bytes("512M"), memory_bytes("2g"), memory_bytes("none")
    (536870912, 2147483648, None)
    """
    text = text.strip().lower()
    if text == "none":
        return None
    if text == "auto":
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return int(min(16 << 30, 0.75 * total))
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    try:
        return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)
    except (ValueError, IndexError):
        raise HarnessError(f"--memory-limit {text!r} is malformed", "use e.g. 8G, 512M, auto or none") from None
