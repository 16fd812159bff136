"""Model weights: hashing files, and loading a state dict without running arbitrary code (safetensors, or
``torch.load(weights_only=True)``) with one clear error for refused or corrupt files. Shared by submissions (through
``harness.submission.load_weights``), the reference encoder and the trainer."""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import torch

from harness.core.errors import HarnessError, fix_for


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict safely: safetensors, or ``torch.load(weights_only=True)``; clear errors otherwise."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(
            f"weights file {path.name} not found (FileNotFoundError): a worker holds only the submission and the "
            "weights file its METADATA declares",
            fix_for(FileNotFoundError(), ""),
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        foreign = _foreign_globals(path)
        if foreign or re.search(r"unsupported global|\bGLOBAL\b", str(exc), re.IGNORECASE):
            raise HarnessError(
                f"weights file {path.name} needs arbitrary code to unpickle and was refused"
                + (f" (it imports {', '.join(sorted(set(foreign))[:3])})" if foreign else ""),
                "save a plain state dict: torch.save(model.state_dict(), path), or use safetensors",
            ) from None
        raise _corrupt(path) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise _corrupt(path, exc) from None


_SAFE_GLOBALS = (
    "torch.",
    "collections.OrderedDict",
    "collections.defaultdict",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
    "_codecs.encode",
    "builtins.set",
    "builtins.frozenset",
    "builtins.slice",
    "builtins.bytearray",
    "builtins.complex",
)


def _foreign_globals(path: Path) -> list[str]:
    """Names a torch checkpoint's pickle would import from outside torch/numpy/collections (read, never run)."""
    import pickletools
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("data.pkl")]
            data = archive.read(names[0]) if names else b""
    except (zipfile.BadZipFile, OSError, IndexError):
        data = path.read_bytes()
    found, strings = [], []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                strings.append(str(arg))
            elif opcode.name == "GLOBAL":
                found.append(str(arg).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                found.append(f"{strings[-2]}.{strings[-1]}")
    except Exception:  # not a pickle stream at all: corrupt, not malicious
        return []
    return [name for name in found if not name.startswith(_SAFE_GLOBALS)]


def _corrupt(path: Path, exc: Exception | None = None) -> HarnessError:
    detail = f" ({type(exc).__name__})" if exc is not None else ""
    return HarnessError(
        f"weights file {path.name} is corrupt or not a torch/safetensors file{detail}",
        "re-save the weights with torch.save(model.state_dict(), path) or safetensors",
    )
