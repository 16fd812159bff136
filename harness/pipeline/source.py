"""Where the model comes from: a submission file or a RobustBench zoo checkpoint, with the hashes that identify it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.config import RunConfig
from harness.data import DEFAULT_DATA_DIR
from harness.errors import HarnessError
from harness.weights import sha256_file


@dataclass(frozen=True)
class ModelSource:
    """The run's configuration with absolute paths, what the model row records as its source, the directory
    the worker may read (the submission's or the zoo's), and the zoo checkpoint (None for a submission)."""

    config: RunConfig
    source: str
    readable: Path
    checkpoint: Path | None = None

    @property
    def required(self) -> tuple[Path, ...]:
        """Files the worker must be able to read besides its directories: the submission file or the checkpoint."""
        return (self.checkpoint,) if self.checkpoint is not None else (self.config.model,)

    def hashes(self, metadata: dict[str, Any]) -> tuple[str, str | None]:
        """sha256 of the model file (or of the zoo id) and of its weights, computed by the parent itself."""
        if self.checkpoint is not None:
            return hashlib.sha256(self.source.encode()).hexdigest(), sha256_file(self.checkpoint)
        path = self.config.model
        weights = metadata.get("weights")
        if not weights:
            return sha256_file(path), None
        weights_path = (path.parent / str(weights)).resolve()
        if path.parent not in weights_path.parents or not weights_path.is_file():
            raise HarnessError(
                f"weights file {weights} named in METADATA is not a file next to the submission",
                "place the weights in the submission's directory",
            )
        return sha256_file(path), sha256_file(weights_path)


def locate(config: RunConfig) -> ModelSource:
    """Resolve the model's and the data's paths (creating the data directory, which the worker's file rules can
    only cover when it exists); a missing submission file or zoo checkpoint is one clear error."""
    data_dir = (config.data_dir or DEFAULT_DATA_DIR).resolve()
    if config.robustbench is not None:
        from harness.worker.zoo import DEFAULT_MODEL_DIR, ensure_checkpoint

        model_dir = (config.model_dir or DEFAULT_MODEL_DIR).resolve()
        config = replace(config, model_dir=model_dir, data_dir=data_dir, threat_model=config.threat_model or "Linf")
        checkpoint = ensure_checkpoint(config.robustbench, config.dataset, config.threat_model, model_dir)
        located = ModelSource(config, f"robustbench:{config.robustbench}", model_dir, checkpoint)
    else:
        config = replace(config, model=config.model.resolve(), data_dir=data_dir)
        if not config.model.is_file():
            raise HarnessError(
                f"submission {config.model} is not an existing .py file",
                "pass --model path/to/submission.py defining load_model() and METADATA",
            )
        located = ModelSource(config, str(config.model), config.model.parent)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(
            f"cannot create the data directory {data_dir}: {exc.strerror or exc}",
            "pass --data-dir DIR pointing at a writable or existing directory",
        ) from None
    return located
