"""The channels to a run's workers: a sandboxed subprocess with its resource limits, or the parent's own process with
``--trusted`` (harness.worker.channel). The time each step may take is harness.pipeline.budgets."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.core.errors import HarnessError


@dataclass(frozen=True)
class WorkerLimits:
    """How the parent runs a run's workers: in its own process (``trusted``) or sandboxed, on which ``device``, with
    progress bars or not, and the sandbox's limits (README, Security model)."""

    trusted: bool = False
    device: str = "auto"
    progress: bool = True
    memory_limit: str = "auto"  # auto, none, or a size such as 8G (memory_bytes)
    cpu_limit: int | None = None  # CPU seconds
    process_limit: int | None = None  # processes and threads of one worker (process_limit); None: unlimited
    stall_timeout: float = 600.0
    timeout: float | None = None  # the run's wall-clock limit: None derives it from the budgets, inf lifts it


def open_channel(
    limits: WorkerLimits,
    model_files: Mapping[str, Path],
    *,
    forbidden: tuple[Path, ...] = (),
    output=None,
    run_dirs: tuple[Path, ...] = (),
    explains: bool = False,
):
    """The channel to a new worker that may read its private copy of the model's declared files (``model_files``:
    the name inside the copy -> the parent's copy, harness.pipeline.source.ModelFiles.files; the channel's
    ``model_root``) and the Python installation, never anything of ``forbidden`` (the data directories, the
    database, the archive: :func:`secret_paths`). ``output``: the run's harness.worker.channel.OutputCap, shared by
    its workers; ``run_dirs``: the run's directories its supervisor removes should the harness die; ``explains``: the
    worker will compute attributions. A sandboxed worker runs the parent's thread count (harness.core.threads)."""
    from harness.core.threads import decide, thread_env
    from harness.worker.channel import InProcessChannel, SubprocessChannel

    if limits.trusted:
        return InProcessChannel(model_files)
    memory = memory_bytes(limits.memory_limit)
    cuda = limits.device.startswith("cuda") or (limits.device == "auto" and torch.cuda.is_available())
    kind = "data" if cuda else "address_space"
    return SubprocessChannel(
        read_paths=[],
        model_files=model_files,
        memory_bytes=memory,
        memory_limit_kind=kind,
        cpu_seconds=limits.cpu_limit,
        stall_timeout=limits.stall_timeout,
        timeout=None if limits.timeout is None or math.isinf(limits.timeout) else limits.timeout,
        progress=limits.progress,
        pid_namespace=not cuda,  # CUDA fails to initialise in a PID namespace (harness.worker.containment.supervise)
        forbidden_paths=list(forbidden),
        max_processes=limits.process_limit,
        output=output,
        run_dirs=list(run_dirs),
        explains=explains,
        env=thread_env(decide()),  # the parent's thread count (harness.core.threads): every worker gets the same
    )


def process_limit(text: str | int | None) -> int | None:
    """``--process-limit``: ``auto`` (256 + 4 per CPU: torch starts a thread pool per core), ``none``, or a number
    of at least 8 (processes and threads of one worker: a cgroup's ``pids.max``, else ``RLIMIT_NPROC``).

    >>> process_limit("64"), process_limit("none"), process_limit("auto") >= 260
    (64, None, True)
    """
    value = str(text).strip().lower() if text is not None else "none"
    if value == "none":
        return None
    if value == "auto":
        return 256 + 4 * (os.cpu_count() or 1)
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 8:
        raise HarnessError(f"--process-limit {text!r} is not auto, none or a number of at least 8", "e.g. 64")
    return number


def secret_paths(data_dir: Path, db: str) -> tuple[Path, ...]:
    """What no worker may read, even where the Python installation lies beside it: the run's data directory, the
    default one and the system's data sets (``/usr/share/datasets``), the results database (a SQLite file, with its
    journal files) and the results directory (the archive, figures)."""
    from harness.data import DEFAULT_DATA_DIR
    from harness.data.fashion_mnist import DEBIAN_FASHION_MNIST

    paths = [data_dir, DEFAULT_DATA_DIR, DEBIAN_FASHION_MNIST.parent, Path("results")]
    url = db.split("?", 1)[0]
    if url.lower().startswith("sqlite:///") and url[len("sqlite:///") :] not in ("", ":memory:"):
        db_file = url[len("sqlite:///") :]
        paths += [Path(db_file + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
    return tuple(dict.fromkeys(Path(os.path.realpath(p)) for p in paths))


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
