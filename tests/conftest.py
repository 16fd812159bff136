"""Shared fixtures: the real Fashion-MNIST test images and the shipped models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.data import load_examples, prepare_fashion_mnist
from harness.worker.submission import load_submission

ROOT = Path(__file__).resolve().parents[1]
SUBMISSIONS = ROOT / "submissions"
DATA_DIR = Path(os.environ.get("ROBINT_DATA_DIR", ROOT / "data"))

# Under pytest-xdist each worker (and every subprocess it starts) gets one thread: two workers with two
# OpenMP threads each on two cores spin against each other and run many times slower.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


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


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``robint-bench`` in a subprocess; returns the completed process (never raises on failure)."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
