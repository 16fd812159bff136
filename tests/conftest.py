"""Shared fixtures: the real Fashion-MNIST test images and the shipped models."""

from __future__ import annotations

import contextlib
import inspect
import io
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from harness.core import allocator
from harness.data import load_examples, prepare_fashion_mnist
from harness.worker.submission import load_submission

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ROOT / "submissions"
DATA_DIR = Path(os.environ.get("ROBINT_DATA_DIR", ROOT / "data"))

allocator.tune()  # as every command does: freed tensor memory is reused, not unmapped (harness.core.allocator)

# Under pytest-xdist each worker (and every subprocess it starts) gets one thread: two workers with two
# OpenMP threads each on two cores spin against each other and run many times slower.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_collection_modifyitems(items) -> None:
    """Tests that start a process of their own (the CLI in a subprocess, a bad-input ``case.run``) are ``slow``
    (``make test-fast`` leaves them out; ``make test`` and CI run everything). Slow in-process tests carry the
    mark themselves."""
    for item in items:
        function = getattr(item, "function", None)
        if function is not None and any(s in inspect.getsource(function) for s in ("case.run(", "subprocess.")):
            item.add_marker(pytest.mark.slow)
    # modules with the most slow tests first (a stable sort): pytest-xdist hands out whole files (--dist loadfile) in
    # this order, so the long ones start early and the short ones fill the end on both workers
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


@pytest.fixture(scope="session")
def data_dir() -> Path:
    prepare_fashion_mnist(DATA_DIR)
    return DATA_DIR


@pytest.fixture(scope="session")
def fmnist_test(data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The first 200 Fashion-MNIST test images and labels."""
    return load_examples("fashion-mnist", n=200, data_dir=data_dir)


@pytest.fixture(scope="session")
def standard_model():
    return load_submission(SUBMISSIONS / "fmnist_standard.py").model


@pytest.fixture(scope="session")
def robust_model():
    return load_submission(SUBMISSIONS / "fmnist_pgd_linf.py").model


# commands whose parent runs in this process (their workers are processes of their own, sandboxed as always); a
# test of the parent process itself (killed, limited, its environment) passes env or subprocess_only
IN_PROCESS = frozenset(
    {"run", "check", "zoo", "sweep", "results", "runs", "export", "import", "import-robustbench", "leaderboard", "list"}
)


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, subprocess_only: bool = False
) -> subprocess.CompletedProcess:
    """Run ``robint-bench``; returns the completed process (never raises on failure). The ``IN_PROCESS`` commands
    run through the same entry point in this process (a run's workers are still processes of their own), unless
    ``env`` or ``subprocess_only`` is given (``sweep``'s jobs are processes of their own); the others (``train``)
    in a subprocess."""
    if args and args[0] in IN_PROCESS and env is None and not subprocess_only:
        return in_process(*args, cwd=cwd)
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


class _Expired(BaseException):
    """Raised by SIGALRM in :func:`in_process` when the command runs past its timeout (a BaseException, so that the
    command's own error handling reports nothing and it unwinds as from Ctrl-C, stopping its workers)."""


@contextlib.contextmanager
def _deadline(seconds: float | None, argv: list[str]) -> Iterator[None]:
    """Raise :class:`subprocess.TimeoutExpired` (as ``subprocess.run(timeout=...)`` does) when the body runs longer
    than ``seconds``; no limit where ``seconds`` is None or this is not the main thread (signals reach only it)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(*_: object) -> None:
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Expired:
        raise subprocess.TimeoutExpired(argv, seconds) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def in_process(*args: str, cwd: Path | None = None, timeout: float | None = 600) -> subprocess.CompletedProcess:
    """``robint-bench ARGS`` through the console entry point (``harness.cli.main``, as ``python -m harness`` calls
    it) in this process: the same error handling, exit codes and output streams, without a new interpreter; past
    ``timeout`` seconds it raises :class:`subprocess.TimeoutExpired`, as a subprocess would."""
    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["robint-bench", *args]
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        patch.setattr(sys, "argv", argv)
        patch.chdir(cwd or ROOT)
        try:
            with _deadline(timeout, argv):
                main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
