"""One evaluation run: load model and data, check the contract, attack, verify, store.

``evaluate(config)`` is the library entry point; the CLI only builds a :class:`RunConfig`.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness import storage
from harness.attack import parse_attack, run_autoattack
from harness.contract import check_contract
from harness.data import get_dataset, load_examples
from harness.errors import HarnessError
from harness.inference import predict_logits, resolve_device
from harness.provenance import provenance
from harness.seeding import seed_everything
from harness.submission import Submission, load_submission
from harness.threat import check_eps, parse_eps, parse_threat_model


@dataclass
class RunConfig:
    """What the user asked for; ``None`` means "the default from the submission or the data set"."""

    model: Path
    dataset: str | None = None
    n_examples: int = 1000
    threat_model: str | None = None
    eps: str | None = None
    attack: str = "standard"
    seed: int = 0
    batch_size: int = 250
    device: str = "auto"
    data_dir: Path | None = None
    db: str = storage.DEFAULT_DB
    fresh: bool = False
    progress: bool = True


@dataclass(frozen=True)
class ResolvedConfig:
    """The settings that determine a run's numbers; their hash identifies identical runs."""

    dataset: str
    threat_model: str
    eps: float
    eps_text: str
    n_examples: int
    attack: str
    seed: int
    batch_size: int

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


@dataclass
class RunSummary:
    """What ``evaluate`` reports back."""

    run_id: str
    model: str
    config: ResolvedConfig
    clean_acc: float
    robust_acc: float
    reused: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def resolve_config(config: RunConfig, metadata: dict[str, Any]) -> ResolvedConfig:
    """Fill defaults from the submission's METADATA, then from the data set's standard threat model."""
    dataset = config.dataset or str(metadata["dataset"])
    info = get_dataset(dataset)
    if config.dataset and metadata.get("dataset") and config.dataset != metadata["dataset"]:
        raise HarnessError(
            f"the submission is for {metadata['dataset']}, not {config.dataset}", "drop --dataset or fix METADATA"
        )
    threat_model = parse_threat_model(config.threat_model or metadata.get("threat_model") or info.default_threat_model)
    if config.eps is not None:
        eps_raw = config.eps
    elif metadata.get("eps") is not None and metadata.get("threat_model", threat_model) == threat_model:
        eps_raw = str(metadata["eps"])
    else:
        eps_raw = info.default_eps[threat_model]
    eps, eps_text = parse_eps(eps_raw)
    check_eps(threat_model, eps, info.input_numel)
    parse_attack(config.attack)
    if config.batch_size < 1:
        raise HarnessError(f"--batch-size {config.batch_size} must be positive", "use e.g. 250")
    return ResolvedConfig(
        dataset=dataset,
        threat_model=threat_model,
        eps=eps,
        eps_text=eps_text,
        n_examples=config.n_examples,
        attack=config.attack.strip().lower(),
        seed=config.seed,
        batch_size=config.batch_size,
    )


class StageTimer:
    """Wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - start, 3)


def evaluate(config: RunConfig) -> RunSummary:
    """Evaluate one submission and store the run; an identical completed run is reused unless ``fresh``."""
    sessions = storage.open_database(config.db)
    timer = StageTimer()
    with timer("load"):
        sub = load_submission(config.model)
        resolved = resolve_config(config, sub.metadata)
        info = get_dataset(resolved.dataset)
        x, y = load_examples(resolved.dataset, n=resolved.n_examples, data_dir=config.data_dir)
    device = resolve_device(config.device)
    seed_everything(resolved.seed)
    model = sub.model.to(device)
    with timer("contract"):
        check_contract(model, x[: min(len(x), 16)], num_classes=info.num_classes, device=device)

    with sessions.begin() as s:
        model_row = _model_row(s, sub)
        if not config.fresh:
            for run in storage.find_runs(s, model_id=model_row.id, config_key=resolved.key(), status=storage.COMPLETE):
                return RunSummary(run.id, sub.name, resolved, run.clean_acc, run.robust_acc, reused=True)
        run_id = uuid.uuid4().hex[:12]
        s.add(
            storage.RunRecord(
                id=run_id, model_id=model_row.id, status=storage.RUNNING, config_key=resolved.key(),
                config={**asdict(resolved), "device": str(device), "data_dir": str(config.data_dir or "")},
                provenance=provenance(device), **_run_columns(resolved),
            )
        )  # fmt: skip

    try:
        with timer("clean"):
            clean_pred = predict_logits(model, x, batch_size=resolved.batch_size, device=device).argmax(1)
        with timer("attack"):
            outcome = run_autoattack(
                model, x, y, threat_model=resolved.threat_model, eps=resolved.eps, attack=resolved.attack,
                seed=resolved.seed, batch_size=resolved.batch_size, device=device, progress=config.progress,
            )  # fmt: skip
    except BaseException as exc:
        _fail(sessions, run_id, exc)
        raise

    clean_correct = clean_pred == y
    robust_correct = clean_correct & (outcome.adv_pred == y)
    clean_acc = clean_correct.float().mean().item()
    robust_acc = robust_correct.float().mean().item()
    with timer("store"), sessions.begin() as s:
        run = s.get(storage.RunRecord, run_id)
        run.examples = [
            storage.ExampleRecord(
                idx=i, label=int(y[i]), clean_pred=int(clean_pred[i]), adv_pred=int(outcome.adv_pred[i]),
                clean_correct=bool(clean_correct[i]), robust_correct=bool(robust_correct[i]),
                perturbation=float(outcome.perturbation[i]),
            )
            for i in range(len(y))
        ]  # fmt: skip
        run.clean_acc, run.robust_acc = clean_acc, robust_acc
        run.details = {"autoattack": {"accuracy_after": outcome.accuracy_after, "warnings": outcome.warnings}}
        run.timings = dict(timer.seconds)
        run.status, run.finished_at = storage.COMPLETE, storage.utcnow()
    return RunSummary(run_id, sub.name, resolved, clean_acc, robust_acc, timings=dict(timer.seconds))


def _run_columns(resolved: ResolvedConfig) -> dict[str, Any]:
    return {
        "dataset": resolved.dataset, "threat_model": resolved.threat_model, "eps": resolved.eps,
        "eps_text": resolved.eps_text, "n_examples": resolved.n_examples, "seed": resolved.seed,
        "attack": resolved.attack,
    }  # fmt: skip


def _model_row(s, sub: Submission) -> storage.ModelRecord:
    return storage.get_or_create_model(
        s, name=sub.name, source=str(sub.path), file_sha256=sub.file_sha256,
        weights_sha256=sub.weights_sha256, info=_jsonable(sub.metadata),
    )  # fmt: skip


def _fail(sessions, run_id: str, exc: BaseException) -> None:
    message = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
    with sessions.begin() as s:
        run = s.get(storage.RunRecord, run_id)
        run.status, run.error, run.finished_at = storage.FAILED, message[:2000], storage.utcnow()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
