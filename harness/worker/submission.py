"""Loading submissions: one Python file defining ``load_model()`` and ``METADATA`` (see submissions/README.md)."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from harness.core.errors import HarnessError, fix_for
from harness.core.weights import sha256_file

REQUIRED_METADATA = ("name", "dataset", "architecture")


@dataclass
class Submission:
    """A loaded submission: the model in eval mode plus what identifies it."""

    path: Path
    model: nn.Module
    metadata: dict[str, Any]
    file_sha256: str
    weights_sha256: str | None

    @property
    def name(self) -> str:
        return str(self.metadata["name"])


def load_submission(path: str | Path) -> Submission:
    """Import a submission file, validate ``METADATA``, call ``load_model()`` and put the model in eval mode."""
    path = Path(path)
    if not path.is_file() or path.suffix != ".py":
        raise HarnessError(
            f"submission {path} is not an existing .py file",
            "pass --model path/to/submission.py defining load_model() and METADATA",
        )
    module = _import_file(path)
    metadata = getattr(module, "METADATA", None)
    if not isinstance(metadata, dict):
        raise HarnessError(f"submission {path.name} defines no METADATA dict", "see submissions/README.md")
    missing = [key for key in REQUIRED_METADATA if not metadata.get(key)]
    if missing:
        raise HarnessError(
            f"METADATA in {path.name} lacks {', '.join(missing)}", "see submissions/README.md for the keys"
        )
    load_model = getattr(module, "load_model", None)
    if not callable(load_model):
        raise HarnessError(f"submission {path.name} defines no load_model()", "add def load_model() -> nn.Module")
    try:
        model = load_model()
    except HarnessError:
        raise
    except MemoryError:
        raise HarnessError(
            f"load_model() in {path.name} ran out of memory (the worker's memory limit)",
            "raise --memory-limit, or make the model smaller",
        ) from None
    except Exception as exc:
        raise HarnessError(
            f"load_model() in {path.name} raised {type(exc).__name__}: {_first_line(exc)}",
            fix_for(exc, "fix the submission so that load_model() returns the model"),
        ) from None
    if not isinstance(model, nn.Module):
        raise HarnessError(
            f"load_model() in {path.name} returned {type(model).__name__}, not a torch.nn.Module",
            "return the nn.Module itself",
        )
    weights = metadata.get("weights")
    weights_path = path.parent / str(weights) if weights else None
    if weights_path is not None and not weights_path.is_file():
        raise HarnessError(
            f"weights file {weights_path} named in METADATA not found", "place it next to the submission"
        )
    return Submission(
        path=path,
        model=model.eval(),
        metadata=dict(metadata),
        file_sha256=sha256_file(path),
        weights_sha256=sha256_file(weights_path) if weights_path is not None else None,
    )


def _import_file(path: Path):
    name = f"robint_submission_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise HarnessError(f"cannot import submission {path}", "pass a Python source file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise HarnessError(
            f"submission {path.name} has a syntax error at line {exc.lineno}: {exc.msg}", "fix the file"
        ) from None
    except HarnessError:
        sys.modules.pop(name, None)
        raise
    except Exception as exc:
        sys.modules.pop(name, None)
        raise HarnessError(
            f"submission {path.name} failed to import: {type(exc).__name__}: {_first_line(exc)}",
            fix_for(exc, "make the file importable on its own"),
        ) from None
    return module


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"
