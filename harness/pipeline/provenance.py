"""What a run records about where it ran: package versions, git commit, hardware."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGES = (
    "robint-bench",
    "torch",
    "torchvision",
    "pyautoattack",
    "robustbench",
    "captum",
    "shap",
    "quantus",
    "numpy",
    "scipy",
    "sqlalchemy",
    "pandas",
)


def package_versions() -> dict[str, str | None]:
    """Installed version of each package the numbers depend on (``None`` if absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state(path: Path | None = None) -> dict[str, Any]:
    """Commit hash and dirty flag of the git checkout holding ``path`` (the harness by default)."""
    cwd = Path(path or Path(__file__).resolve().parent)
    try:
        commit = _git(cwd, "rev-parse", "HEAD")
        dirty = bool(_git(cwd, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        # a source tree without git metadata (e.g. a copy sent to another machine) may state its commit
        commit = os.environ.get("ROBINT_GIT_COMMIT")
        return {"commit": commit, "dirty": os.environ.get("ROBINT_GIT_DIRTY") == "1" if commit else None}
    return {"commit": commit, "dirty": dirty}


def _git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10)
    return out.stdout.strip()


def hardware(device: torch.device) -> dict[str, Any]:
    """Machine, CPU count, torch threads and the accelerator used."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": _cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def _cpu_count() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def provenance(device: torch.device) -> dict[str, Any]:
    """Everything above in one dict, as stored on a run."""
    return {"versions": package_versions(), "git": git_state(), "hardware": hardware(device)}
