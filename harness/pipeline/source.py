"""Where the model comes from: a submission file or a RobustBench zoo checkpoint, with the hashes that identify it;
and the run's data directory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data import DEFAULT_DATA_DIR
from harness.errors import HarnessError
from harness.weights import sha256_file
from harness.worker.protocol import ModelRef


@dataclass(frozen=True)
class ModelSource:
    """A located model: what the model row records as its ``source``, the directory the worker may read
    (``readable``: the submission's or the zoo's), and either the submission file (absolute) or the zoo model (its
    id, zoo and checkpoint)."""

    source: str
    readable: Path
    submission: Path | None = None
    robustbench: str | None = None
    dataset: str | None = None  # a zoo model's zoo: data set and threat model
    threat_model: str | None = None
    model_dir: Path | None = None
    checkpoint: Path | None = None

    @property
    def required(self) -> tuple[Path, ...]:
        """Files the worker must be able to read besides its directories: the submission file or the checkpoint."""
        return (self.checkpoint,) if self.checkpoint is not None else (self.submission,)

    def ref(self) -> ModelRef:
        """What a worker is told about the model (harness.worker.protocol.WorkerConfig)."""
        if self.robustbench is not None:
            return ModelRef(
                robustbench=self.robustbench,
                dataset=self.dataset,
                threat_model=self.threat_model,
                model_dir=str(self.model_dir),
            )
        return ModelRef(submission=str(self.submission))

    def hashes(self, metadata: dict[str, Any]) -> tuple[str, str | None]:
        """sha256 of the model file (or of the zoo id) and of its weights, computed by the parent itself."""
        if self.checkpoint is not None:
            return hashlib.sha256(self.source.encode()).hexdigest(), sha256_file(self.checkpoint)
        path = self.submission
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


def locate(
    *,
    model: Path | None = None,
    robustbench: str | None = None,
    dataset: str | None = None,
    threat_model: str | None = None,
    model_dir: Path | None = None,
) -> ModelSource:
    """The model's absolute paths: the submission file, or the zoo checkpoint of ``robustbench`` in ``dataset``'s
    ``threat_model`` zoo (Linf unless given; downloaded with RobustBench when missing). A missing submission file or
    zoo checkpoint is one clear error."""
    if robustbench is not None:
        from harness.worker.zoo import DEFAULT_MODEL_DIR, ensure_checkpoint

        model_dir = (model_dir or DEFAULT_MODEL_DIR).resolve()
        threat_model = threat_model or "Linf"
        checkpoint = ensure_checkpoint(robustbench, dataset, threat_model, model_dir)
        return ModelSource(
            f"robustbench:{robustbench}", model_dir, None, robustbench, dataset, threat_model, model_dir, checkpoint
        )
    path = model.resolve()
    if not path.is_file():
        raise HarnessError(
            f"submission {path} is not an existing .py file",
            "pass --model path/to/submission.py defining load_model() and METADATA",
        )
    return ModelSource(str(path), path.parent, submission=path)


def data_directory(data_dir: Path | None) -> Path:
    """The run's data directory, absolute and created (the worker's file rules can only cover it when it exists)."""
    path = (data_dir or DEFAULT_DATA_DIR).resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(
            f"cannot create the data directory {path}: {exc.strerror or exc}",
            "pass --data-dir DIR pointing at a writable or existing directory",
        ) from None
    return path
