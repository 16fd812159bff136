"""Loading RobustBench zoo checkpoints inside the sandboxed worker: weights only, never arbitrary unpickling.

robustbench 1.1.1 calls ``torch.load(path)`` without ``weights_only``, so under torch >= 2.6 it is torch's
weights-only unpickler that reads zoo checkpoints. Real RobustBench checkpoints hold more than tensors: training
scripts saved the epoch or accuracy as numpy scalars and their command-line ``argparse.Namespace``. Those load
here because :func:`checkpoint_globals` allows exactly these data-only types for the duration of the load (numpy
scalars under both their numpy 1 and numpy 2 module names, numpy dtypes and numeric arrays,
``argparse.Namespace``); anything else is still refused by torch.

Two failures get their own message: a file that is an HTML page (a Google Drive quota or confirmation page saved
as ``.pt``, RobustBench issues 68, 158 and 177) is named as such with where to download it again, and any other
failure is reported with its complete cause (never cut short), so that "corrupt" is not guessed.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from harness.core.errors import HarnessError

_HTML_MARKERS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<meta", b"<title", b"<script")


def safe_globals() -> list:
    """The data-only globals real RobustBench checkpoints need beyond tensors (for ``torch.serialization``)."""
    scalar = np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar
    reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
    dtypes = [
        getattr(np.dtypes, name)
        for name in dir(np.dtypes)
        if name.endswith("DType") and name not in ("ObjectDType", "VoidDType", "StringDType")
    ]
    return [
        scalar,
        (scalar, "numpy.core.multiarray.scalar"),  # pickled by numpy 1.x, the numpy of RobustBench's checkpoints
        reconstruct,
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        *dtypes,
        argparse.Namespace,
    ]


@contextlib.contextmanager
def checkpoint_globals() -> Iterator[None]:
    """Within this block, ``torch.load`` (weights only, the default) also accepts :func:`safe_globals`."""
    with torch.serialization.safe_globals(safe_globals()):
        yield


def is_web_page(path: Path) -> bool:
    """Whether the file starts like an HTML document rather than a torch checkpoint (a zip or a pickle)."""
    with open(path, "rb") as fh:
        head = fh.read(2048)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith(b"<") and any(marker in text for marker in _HTML_MARKERS)


def download_source(entry: dict) -> str:
    """Where a zoo entry's checkpoint comes from (its Google Drive URL when RobustBench lists one)."""
    gdrive = entry.get("gdrive_id")
    if isinstance(gdrive, str) and gdrive:
        return f"https://drive.google.com/uc?id={gdrive} (RobustBench's model zoo)"
    return "RobustBench's model zoo (timm / Hugging Face)"


def check_checkpoint_file(path: Path, source: str) -> None:
    """Raise before loading when ``path`` is empty or a saved web page (``source``: where to download it again)."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise HarnessError(f"checkpoint {path} is empty", f"download it again from {source}")
    if is_web_page(path):
        raise HarnessError(
            f"{path} is a web page, not a checkpoint: download it again from {source}",
            "delete the file first; Google Drive serves a quota or confirmation page instead of large files when "
            "its download limit is reached, and that page was saved under the checkpoint's name",
        )


def load_checkpoint(path: Path, source: str) -> object:
    """``torch.load`` of a zoo checkpoint on the CPU, weights only with :func:`safe_globals`, clear errors."""
    check_checkpoint_file(path, source)
    try:
        with checkpoint_globals():
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise load_failure(path, exc, source) from None


def load_failure(path: Path, exc: BaseException, source: str) -> HarnessError:
    """The error for a checkpoint that did not load: the complete cause on one line, and a fix that fits it."""
    cause = one_line(exc)
    unsupported = re.search(r"Unsupported global: GLOBAL (\S+)", cause)
    if unsupported:
        fix = (
            f"the checkpoint holds a Python object of type {unsupported.group(1)}, which robint-bench does not "
            "unpickle (only tensors, numpy scalars and arrays, and argparse.Namespace): save its state_dict alone, "
            f"or download the original from {source}"
        )
    else:
        fix = f"if the file was cut short or is not this model's checkpoint, download it again from {source}"
    return HarnessError(f"RobustBench could not load {path}: {type(exc).__name__}: {cause}", fix)


def one_line(exc: BaseException) -> str:
    """The exception's whole message on one line (terminal colour codes dropped, nothing truncated)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    return " ".join(text.split()) or "(no message)"
