"""RobustBench zoo models: checkpoints at ``<model_dir>/<dataset>/<threat_model>/<id>.pt`` loaded through
``robustbench.utils.load_model`` (imported via the pyautoattack shim).

The parent resolves the checkpoint (and tries RobustBench's own download when it is missing); the worker loads it
from the read-only model directory, so the worker itself never needs the network.
"""

from __future__ import annotations

import contextlib
import difflib
import io
from pathlib import Path
from typing import Any

from torch import nn

from harness.core.autoattack_shim import import_robustbench
from harness.core.errors import HarnessError

DEFAULT_MODEL_DIR = Path("models")


def _entry(model_id: str, dataset: str, threat_model: str) -> dict[str, Any]:
    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    try:
        zoo = model_dicts[BenchmarkDataset(dataset)][ThreatModel(threat_model)]
    except (ValueError, KeyError):
        raise HarnessError(
            f"RobustBench has no {dataset} {threat_model} zoo",
            "use --dataset cifar10|cifar100|imagenet and --threat-model Linf|L2",
        ) from None
    if model_id not in zoo:
        close = difflib.get_close_matches(model_id, list(zoo), n=3)
        raise HarnessError(
            f"RobustBench has no model {model_id!r} for {dataset} {threat_model}",
            f"did you mean {', '.join(close)}?" if close else "see RobustBench's model zoo",
        )
    return zoo[model_id]


def checkpoint_path(model_id: str, dataset: str, threat_model: str, model_dir: Path) -> Path:
    """Where RobustBench's ``load_model`` looks for the checkpoint."""
    return Path(model_dir) / dataset / threat_model / f"{model_id}.pt"


def ensure_checkpoint(model_id: str, dataset: str, threat_model: str, model_dir: Path) -> Path:
    """The checkpoint's path; downloads it with RobustBench when missing, else one clear error naming the file. An
    empty file or a saved web page is named here, by its own path (the workers load a private copy of it)."""
    from harness.worker.checkpoints import check_checkpoint_file, download_source

    entry = _entry(model_id, dataset, threat_model)
    path = checkpoint_path(model_id, dataset, threat_model, model_dir)
    if path.is_file():
        check_checkpoint_file(path, download_source(entry))
        return path
    source = entry.get("gdrive_id")
    if isinstance(source, list):
        raise HarnessError(
            f"RobustBench model {model_id} is an ensemble of {len(source)} checkpoints, which robint-bench does not "
            "load",
            "evaluate one of its members as a submission file",
        )
    where = f"Google Drive id {source}" if source else "timm / Hugging Face"
    try:
        from robustbench.utils import download_gdrive_new

        if source is None:
            raise OSError("no download source")
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            download_gdrive_new(source, path)
    except Exception:  # offline: requests/gdown connection errors
        path.unlink(missing_ok=True)
    if not path.is_file() or path.stat().st_size == 0:
        raise HarnessError(
            f"checkpoint {path} of RobustBench model {model_id} is missing and could not be downloaded",
            f"place the file there (RobustBench model zoo, {where}), or pass --model-dir",
        )
    return path


def load_zoo_model(model_id: str, dataset: str, threat_model: str, model_dir: Path) -> tuple[nn.Module, dict]:
    """The zoo model in eval mode and METADATA-like facts about it (run inside the worker)."""
    entry = _entry(model_id, dataset, threat_model)
    path = checkpoint_path(model_id, dataset, threat_model, model_dir)
    if not path.is_file():
        raise HarnessError(f"checkpoint {path} is missing", "place it there or pass --model-dir")
    from robustbench.utils import load_model

    from harness.worker.checkpoints import check_checkpoint_file, checkpoint_globals, download_source, load_failure

    source = download_source(entry)
    check_checkpoint_file(path, source)  # a saved web page is named as such, before torch reads it
    try:
        with checkpoint_globals():  # robustbench's torch.load: weights only, plus numpy scalars and Namespace
            model = load_model(
                model_id,
                model_dir=str(model_dir),
                dataset=dataset,
                threat_model=threat_model,
                custom_checkpoint=str(path),
            )  # custom_checkpoint: used by timm-served zoo entries only
    except HarnessError:
        raise
    except Exception as exc:
        raise load_failure(path, exc, source) from None
    architecture = type(model).__name__
    return model.eval(), {
        "name": model_id,
        "dataset": dataset,
        "threat_model": threat_model,
        "architecture": architecture,
        "source": "robustbench",
        "robustbench_id": model_id,
    }
