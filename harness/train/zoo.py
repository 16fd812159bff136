"""The model zoo: a spec file that lists its models (each one the trainer's options, or an existing submission), and
training the models whose submission files are missing.

Spec (JSON, ``format: robint-bench-zoo/1``)::

    {"format": "robint-bench-zoo/1",
     "evaluate": {"threat_model": "Linf", "eps": "0.1", "n_examples": 500, "attack": "apgd-ce,apgd-t"},
     "models": [
       {"name": "fmnist_standard", "submission": "../fmnist_standard.py",
        "evaluate": {"n_examples": 1000, "attack": "standard"}},
       {"name": "zoo_fgsm_linf_0.1_s1", "train": {"method": "fgsm-rs", "eps": "0.1", "epochs": 4, "seed": 1}}]}

A model with ``train`` is written by the trainer to ``<spec directory>/<name>.py`` (weights ``<name>.pt`` next to it),
with the equivalent ``robint-bench train`` command in its METADATA; one with ``submission`` (a path relative to the
spec) is used as it is. ``evaluate`` settings apply to every model, a model's own ``evaluate`` overrides them.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.train.trainer import TrainConfig, TrainReport, train

SPEC_FORMAT = "robint-bench-zoo/1"
DEFAULT_SPEC = Path("submissions/zoo/zoo.json")
# trainer options a spec may set (where the data live and which device trains are the command line's business)
TRAIN_KEYS = tuple(
    f.name
    for f in fields(TrainConfig)
    if f.name not in ("out", "command", "progress", "checkpoint", "device", "data_dir")
)
# evaluation settings a spec may set (RunConfig fields that define what is measured)
EVAL_KEYS = (
    "dataset",
    "n_examples",
    "threat_model",
    "eps",
    "attack",
    "seed",
    "batch_size",
    "metrics",
    "methods",
    "n_explain",
    "explain_target",
    "explain_output",
    "method_options",
    "featurevis",
    "featurevis_options",
)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo: its submission file, the trainer options that write it (None: it exists already, e.g.
    a shipped model) and its own evaluation settings."""

    name: str
    submission: Path
    train: dict[str, Any] | None = None
    evaluate: dict[str, Any] = field(default_factory=dict)

    @property
    def weights(self) -> Path:
        return self.submission.with_suffix(".pt")

    @property
    def checkpoint(self) -> Path:
        return self.submission.with_suffix(".ckpt")

    def trained(self) -> bool:
        """True when both the submission and its weights exist (a trained model is never retrained)."""
        return self.submission.is_file() and (self.train is None or self.weights.is_file())


@dataclass(frozen=True)
class ZooSpec:
    path: Path
    evaluate: dict[str, Any]
    entries: tuple[ZooEntry, ...]

    def select(self, only: Iterable[str] | None = None) -> list[ZooEntry]:
        """The entries named in ``only`` (all when None), in spec order; an unknown name is an error."""
        if only is None:
            return list(self.entries)
        wanted = list(dict.fromkeys(only))
        known = {e.name for e in self.entries}
        unknown = [n for n in wanted if n not in known]
        if unknown:
            raise HarnessError(f"--only {', '.join(unknown)}: not in {self.path}", f"choose from {', '.join(known)}")
        return [e for e in self.entries if e.name in wanted]


def load_spec(path: Path) -> ZooSpec:
    """Read and check a zoo spec; errors name the file, the model and the key."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"cannot read zoo spec {path}: {exc}", "pass --spec with a JSON zoo spec") from None
    if not isinstance(data, dict) or data.get("format") != SPEC_FORMAT:
        raise HarnessError(f"{path} is not a zoo spec", f'it needs "format": "{SPEC_FORMAT}"')
    evaluate = _settings(path, "evaluate", data.get("evaluate", {}), EVAL_KEYS)
    models = data.get("models")
    if not isinstance(models, list) or not models:
        raise HarnessError(f"{path} lists no models", 'add "models": [{"name": ..., "train": {...}}, ...]')
    entries, names = [], set()
    for i, item in enumerate(models):
        where = f"{path}, models[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "train", "submission", "evaluate", "note"}:
            raise HarnessError(f"{where}: unexpected entry {item!r}", "keys: name, train or submission, evaluate, note")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in names:
            raise HarnessError(f"{where}: bad or repeated name {name!r}", "a unique file-name-safe name per model")
        names.add(name)
        if ("train" in item) == ("submission" in item):
            raise HarnessError(
                f"{where} ({name}): give exactly one of train and submission", "see harness/train/zoo.py"
            )
        own = _settings(path, f"{name}.evaluate", item.get("evaluate", {}), EVAL_KEYS)
        if "train" in item:
            options = _settings(path, f"{name}.train", item["train"], TRAIN_KEYS)
            if "method" not in options:
                raise HarnessError(f"{where} ({name}): train has no method", 'e.g. "method": "fgsm-rs"')
            entries.append(ZooEntry(name, path.parent / f"{name}.py", options, own))
        else:
            entries.append(ZooEntry(name, Path(os.path.normpath(path.parent / str(item["submission"]))), None, own))
    return ZooSpec(path, evaluate, tuple(entries))


def _settings(path: Path, where: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise HarnessError(f"{path}: {where} must be an object, not {value!r}", "see harness/train/zoo.py")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise HarnessError(f"{path}: {where} has unknown keys {', '.join(unknown)}", f"use {', '.join(allowed)}")
    return dict(value)


def train_command(entry: ZooEntry, *, device: str = "auto", data_dir: Path | None = None) -> str:
    """The ``robint-bench train`` command equivalent to the entry (the option order of TrainConfig), as recorded in
    the model's METADATA."""
    if entry.train is None:
        raise ValueError(f"{entry.name} is not trained by the zoo")
    args = ["robint-bench", "train"]
    for key in TRAIN_KEYS:
        if key not in entry.train:
            continue
        value, flag = entry.train[key], "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{key.replace('_', '-')}")
        elif value is not None:
            args += [flag, str(value)]
    if device != "auto":
        args += ["--device", device]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    args += ["--out", _display(entry.submission)]
    return " ".join(shlex.quote(a) for a in args)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def _options(command: str) -> list[str]:
    """A training command's options without where it ran (--out, --device, --data-dir) and progress flags."""
    args, out, skip = shlex.split(command), [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("--out", "--device", "--data-dir"):
            skip = True
        elif a != "--quiet":
            out.append(a)
    return out


@dataclass
class Trained:
    """What ``train_missing`` did with one entry: ``exists`` (left as it is), ``trained``, or ``given`` (a
    submission the zoo does not train)."""

    name: str
    status: str
    report: TrainReport | None = None


def recorded_metadata(submission: Path) -> dict[str, Any] | None:
    """The ``METADATA`` literal of a trainer-written submission, read with ``ast`` (the file is not imported)."""
    try:
        tree = ast.parse(submission.read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "METADATA" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def recorded_command(submission: Path) -> str | None:
    """The training command a trainer-written submission records in ``METADATA["training"]["command"]``."""
    training = (recorded_metadata(submission) or {}).get("training")
    command = training.get("command") if isinstance(training, dict) else None
    return command if isinstance(command, str) else None


def train_missing(
    spec: ZooSpec,
    *,
    only: Iterable[str] | None = None,
    device: str = "auto",
    data_dir: Path | None = None,
    progress: bool = True,
    on_done: Callable[[Trained], None] | None = None,
) -> list[Trained]:
    """Train every selected entry whose submission or weights are missing (resuming from its per-epoch checkpoint
    ``<name>.ckpt`` after an interruption). A trained model whose recorded command no longer matches its spec entry
    is an error: delete its files to retrain it."""
    done = []
    for entry in spec.select(only):
        if entry.train is None:
            if not entry.submission.is_file():
                raise HarnessError(f"{entry.name}: submission {entry.submission} does not exist", "restore it from git")
            result = Trained(entry.name, "given")
        elif entry.trained():
            _check_unchanged(entry)
            result = Trained(entry.name, "exists")
        else:
            command = train_command(entry, device=device, data_dir=data_dir)
            config = TrainConfig(
                **entry.train,
                out=entry.submission,
                command=command,
                device=device,
                data_dir=data_dir,
                progress=progress,
                checkpoint=entry.checkpoint,
            )
            result = Trained(entry.name, "trained", train(config))
        done.append(result)
        if on_done is not None:
            on_done(result)
    return done


def _check_unchanged(entry: ZooEntry) -> None:
    recorded = recorded_command(entry.submission)
    expected = train_command(entry)
    if recorded is None or _options(recorded) != _options(expected):
        raise HarnessError(
            f"{entry.submission} was trained with `{recorded}`, but the spec now says `{expected}`",
            f"delete {entry.submission} and {entry.weights} to retrain it, or restore the spec entry",
        )
