"""Where the model comes from: a submission file or a RobustBench zoo checkpoint, the files it declares, the copy of
them every worker is given, and the hashes that identify it; and the run's data directory.

A submission declares every file a worker may read: itself, and the one weights file its ``METADATA`` names
(``"weights"``: a path next to it, read from the file's text before anything of it runs: :func:`declared_weights`).
The parent copies them once into a directory of its own (:class:`ModelFiles`, the master copy, hashed there: the
model's identity is the sha256 of exactly the bytes the workers get) and each worker gets a private copy of that
(harness.worker.containment.private_copy): no undeclared file is there to open, no two workers share an inode (a
lock or a file's times are no channel between them), and a file changed on disk during the run changes nothing.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.weights import sha256_file
from harness.data import DEFAULT_DATA_DIR
from harness.worker.containment import make_worker_dir, remove_tree
from harness.worker.protocol import ModelRef

_UNDECLARED = "?"  # declared_weights: METADATA names weights, but not as a string literal


@dataclass(frozen=True)
class ModelSource:
    """A located model: what the model row records as its ``source``, and either the submission file (absolute)
    with the weights file its METADATA declares (relative to the submission's directory), or the zoo model (its id,
    zoo and checkpoint)."""

    source: str
    submission: Path | None = None
    weights: str | None = None
    robustbench: str | None = None
    dataset: str | None = None  # a zoo model's zoo: data set and threat model
    threat_model: str | None = None
    model_dir: Path | None = None
    checkpoint: Path | None = None

    def files(self) -> dict[str, Path]:
        """The declared files: their names inside a worker's copy -> the originals."""
        if self.checkpoint is not None:
            return {f"{self.dataset}/{self.threat_model}/{self.robustbench}.pt": self.checkpoint}
        files = {self.submission.name: self.submission}
        if self.weights and self.weights != _UNDECLARED:
            files[self.weights] = (self.submission.parent / self.weights).resolve()
        return files

    def ref(self, root: Path) -> ModelRef:
        """What a worker whose copy of the files is ``root`` is told about the model (WorkerConfig)."""
        if self.robustbench is not None:
            return ModelRef(
                robustbench=self.robustbench, dataset=self.dataset, threat_model=self.threat_model, model_dir=str(root)
            )
        return ModelRef(submission=str(root / self.submission.name))

    def check_declared(self, metadata: dict[str, Any]) -> None:
        """The METADATA a worker reported names the weights file the parent read from the submission's text (the
        only file besides the submission that the workers were given)."""
        if self.submission is None:
            return
        reported = metadata.get("weights") or None
        declared = None if self.weights == _UNDECLARED else self.weights
        if reported != declared:
            raise HarnessError(
                f"METADATA of {self.submission.name} reports weights {reported!r}, but its text declares "
                f"{'no readable weights entry' if self.weights == _UNDECLARED else repr(declared)}",
                'write METADATA as a dict literal with "weights": "FILE" as a plain string (robint-bench reads it '
                "before running the file, and gives the model only that file)",
            )


@dataclass
class ModelFiles:
    """The model's declared files, copied once into a directory only the parent can read (``root``), hashed there:
    ``file_sha256`` (the submission's bytes; a zoo model: its ``robustbench:ID`` source) and ``weights_sha256``
    (the weights or checkpoint, or None). Every worker's private copy is made from these files (:meth:`files`)."""

    source: ModelSource
    root: Path
    file_sha256: str
    weights_sha256: str | None

    @classmethod
    def of(cls, source: ModelSource) -> ModelFiles:
        """Copy and hash ``source``'s declared files.

        Raises:
            HarnessError: a declared file is missing, or (as root, where the workers run as a user of their own)
                not readable by others.
        """
        root = make_worker_dir()
        try:
            for name, original in source.files().items():
                _check_readable(original)
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(original, target)
            names = list(source.files())
            if source.checkpoint is not None:
                file_sha = hashlib.sha256(source.source.encode()).hexdigest()
                weights_sha = sha256_file(root / names[0])
            else:
                file_sha = sha256_file(root / names[0])
                weights_sha = sha256_file(root / names[1]) if len(names) > 1 else None
        except BaseException:
            remove_tree(root)
            raise
        return cls(source, root, file_sha, weights_sha)

    def files(self) -> dict[str, Path]:
        """Names inside a worker's copy -> the parent's copies (what harness.worker.containment.private_copy takes)."""
        return {name: self.root / name for name in self.source.files()}

    def remove(self) -> None:
        remove_tree(self.root)


def declared_weights(path: Path) -> str | None:
    """The weights file the submission's ``METADATA`` names, read from its text without running it: the
    ``"weights"`` entry of a top-level ``METADATA = {...}`` dict literal, or a top-level
    ``METADATA["weights"] = "..."`` (the last of them counts); None when it names none (or the file does not parse:
    loading it reports that); ``"?"`` when the value is not a plain string, or METADATA not a dict literal.

    >>> import tempfile
    >>> f = Path(tempfile.mkdtemp()) / "m.py"
    >>> _ = f.write_text('METADATA = {"name": "m", "weights": "m.pt"}\\n')
    >>> declared_weights(f)
    'm.pt'
    >>> _ = f.write_text('METADATA = {"name": "m"}\\nMETADATA["weights"] = "w.pt"\\nimport json\\n')
    >>> declared_weights(f)
    'w.pt'
    """
    try:
        tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        return None
    declared: str | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        else:
            targets = [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else []
        for target in targets:
            if isinstance(target, ast.Name) and target.id == "METADATA":
                declared = _UNDECLARED if not isinstance(node.value, ast.Dict) else None
                if isinstance(node.value, ast.Dict):
                    for key, value in zip(node.value.keys, node.value.values, strict=True):
                        if isinstance(key, ast.Constant) and key.value == "weights":
                            declared = _plain(value)
            elif (
                isinstance(target, ast.Subscript)
                and isinstance(target.value, ast.Name)
                and target.value.id == "METADATA"
                and isinstance(target.slice, ast.Constant)
                and target.slice.value == "weights"
            ):
                declared = _plain(node.value)
    return declared


def _plain(value: ast.expr) -> str | None:
    if isinstance(value, ast.Constant) and (value.value is None or isinstance(value.value, str)):
        return value.value or None
    return _UNDECLARED


def locate(
    *,
    model: Path | None = None,
    robustbench: str | None = None,
    dataset: str | None = None,
    threat_model: str | None = None,
    model_dir: Path | None = None,
) -> ModelSource:
    """The model's absolute paths: the submission file (a ``.py`` file) and the weights file its METADATA declares
    (a file inside the submission's directory), or the zoo checkpoint of ``robustbench`` in ``dataset``'s
    ``threat_model`` zoo (Linf unless given; downloaded with RobustBench when missing). A missing file is one clear
    error."""
    if robustbench is not None:
        from harness.worker.zoo import DEFAULT_MODEL_DIR, ensure_checkpoint

        model_dir = (model_dir or DEFAULT_MODEL_DIR).resolve()
        threat_model = threat_model or "Linf"
        checkpoint = ensure_checkpoint(robustbench, dataset, threat_model, model_dir)
        return ModelSource(
            f"robustbench:{robustbench}",
            robustbench=robustbench,
            dataset=dataset,
            threat_model=threat_model,
            model_dir=model_dir,
            checkpoint=checkpoint,
        )
    path = model.resolve()
    if not path.is_file() or path.suffix != ".py":
        raise HarnessError(
            f"submission {path} is not an existing .py file",
            "pass --model path/to/submission.py defining load_model() and METADATA",
        )
    weights = declared_weights(path)
    if weights is not None and weights != _UNDECLARED:
        weights_path = (path.parent / weights).resolve()
        if Path(weights).is_absolute() or path.parent not in weights_path.parents or not weights_path.is_file():
            raise HarnessError(
                f"weights file {weights} named in METADATA is not a file next to the submission",
                "place the weights in the submission's directory",
            )
        weights = weights_path.relative_to(path.parent).as_posix()
    return ModelSource(str(path), submission=path, weights=weights)


def _check_readable(path: Path) -> None:
    """As root a worker runs as a user of its own, so a declared file must be one that others may read (a private
    file is not handed to a submission's code by way of a copy)."""
    if os.geteuid() != 0:
        return
    if not os.stat(path).st_mode & stat.S_IROTH:
        raise HarnessError(
            f"robint-bench runs as root, so its worker runs as a user of its own, which cannot read {path}",
            "make it readable by others (chmod -R o+rX), or run robint-bench as an unprivileged user",
        )


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
