"""One evaluation run, from the parent's side: the only process that writes to the database.

``evaluate(config)`` is the library entry point; the CLI only builds a :class:`RunConfig`. The submission's code
runs in a sandboxed worker (harness/worker.py) unless ``config.trusted``; the parent validates everything that
comes back (adversarial examples are re-checked against its own copy of the data) and commits progress per
attack chunk and per (method, metric) score, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sqlalchemy import delete, select, update

from harness import featurevis_scores, ownership, storage
from harness.attack import verify_adversarial
from harness.config import (
    ResolvedConfig,
    RunConfig,
    check_options,
    resolve_featurevis,
    suite_from_json,
    suite_settings,
)
from harness.data import DEFAULT_DATA_DIR, get_dataset, load_examples
from harness.errors import HarnessError
from harness.flags import run_flags
from harness.provenance import provenance
from harness.stats import bootstrap_interval
from harness.submission import sha256_file
from metrics.featurevis.pipeline import FeatureVisConfig
from metrics.suite import SuiteConfig

FIGURE_ROWS = 6  # examples shown in a run's attribution, adversarial and inversion figures

__all__ = ["RunConfig", "RunSummary", "evaluate", "summarise"]


@dataclass
class RunSummary:
    """What ``evaluate`` reports back."""

    run_id: str
    model: str
    config: ResolvedConfig
    clean_acc: float
    robust_acc: float
    reused: bool = False
    resumed: bool = False
    timings: dict[str, float] = field(default_factory=dict)


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


@dataclass
class _Plan:
    run_id: str
    chunks: list[tuple[int, int]]
    suite: SuiteConfig | None
    reused: bool = False
    resumed: bool = False


def evaluate(config: RunConfig) -> RunSummary:
    """Evaluate one submission and store the run.

    An identical completed run (same model hashes and attack configuration) is reused unless ``fresh``, and the
    interpretability scores it lacks are added to it; an interrupted identical run is resumed.
    """
    check_options(config)
    sessions = storage.open_database(config.db)
    data_dir = (config.data_dir or DEFAULT_DATA_DIR).resolve()
    if config.robustbench is not None:
        from harness.zoo import DEFAULT_MODEL_DIR, ensure_checkpoint

        model_dir = (config.model_dir or DEFAULT_MODEL_DIR).resolve()
        config = replace(config, model_dir=model_dir, data_dir=data_dir, threat_model=config.threat_model or "Linf")
        checkpoint = ensure_checkpoint(config.robustbench, config.dataset, config.threat_model, model_dir)
        source, readable = f"robustbench:{config.robustbench}", model_dir
    else:
        config = replace(config, model=config.model.resolve(), data_dir=data_dir)
        if not config.model.is_file():
            raise HarnessError(f"submission {config.model} is not an existing .py file",
                               "pass --model path/to/submission.py defining load_model() and METADATA")  # fmt: skip
        checkpoint, source, readable = None, str(config.model), config.model.parent
    try:  # the worker's file rules only cover paths that exist when it starts; the parent fills the dir later
        config.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(f"cannot create the data directory {config.data_dir}: {exc.strerror or exc}",
                           "pass --data-dir DIR pointing at a writable or existing directory") from None  # fmt: skip
    timer = StageTimer()
    channel = _open_channel(config, readable)
    run_id = None
    try:
        with timer("load"):
            loaded = channel.request({"op": "load", "config": config.to_json()})
            metadata, resolved = loaded["metadata"], ResolvedConfig(**loaded["resolved"])
            suite = suite_from_json(loaded["suite"]) if loaded["suite"] else None
            if checkpoint is not None:
                file_sha, weights_sha = hashlib.sha256(source.encode()).hexdigest(), sha256_file(checkpoint)
            else:
                file_sha, weights_sha = _hash_submission(config.model, metadata)
            info = get_dataset(resolved.dataset)
            x, y = load_examples(resolved.dataset, n=resolved.n_examples, data_dir=config.data_dir)
        with timer("contract"):
            checked = channel.request({"op": "check", "data_dir": str(config.data_dir)})
        model_id = storage.ensure_model(sessions, name=str(metadata["name"]), source=source, file_sha256=file_sha,
                                        weights_sha256=weights_sha, info=metadata)  # fmt: skip
        with storage.transaction(sessions) as s:
            plan = _plan(s, s.get(storage.ModelRecord, model_id), resolved, suite, config, checked, channel)
            run_id = plan.run_id
        if plan.chunks:
            with timer("attack"):
                def store(m: dict[str, Any]) -> None:
                    _store_chunk(sessions, run_id, m, x, y, resolved, info)

                channel.request({"op": "attack", "chunks": plan.chunks}, on_message=store)
        if plan.suite is not None:
            with timer("explain"):
                _explain(sessions, channel, run_id, plan.suite)
        featurevis = resolve_featurevis(config)
        if featurevis is not None and _missing_featurevis(sessions, run_id, featurevis):
            with timer("featurevis"):
                _featurevis(sessions, channel, run_id, featurevis, x, resolved, info, config)
        figures_dir = run_files_dir(config.db, run_id)
        if figures_dir is not None:
            with timer("figures"):
                _figures(sessions, run_id, figures_dir, x, y, resolved, info)
        with storage.transaction(sessions) as s:
            run = s.get(storage.RunRecord, run_id)
            if not plan.reused:
                _finish(s, run, resolved, metadata, checked["flags"], timer.seconds)
            else:  # scores added to a completed run: its intermediate artifacts are not needed any more
                s.execute(delete(storage.ArtifactRecord).where(storage.ArtifactRecord.run_id == run.id))
        return RunSummary(run_id, str(metadata["name"]), resolved, run.clean_acc, run.robust_acc,
                          reused=plan.reused, resumed=plan.resumed, timings=dict(timer.seconds))  # fmt: skip
    except BaseException as exc:
        if run_id is not None:
            _fail(sessions, run_id, exc)
        raise
    finally:
        channel.close()


def _open_channel(config: RunConfig, readable: Path):
    from harness.channel import InProcessChannel, SubprocessChannel

    if config.trusted:
        return InProcessChannel()
    memory = _memory_bytes(config.memory_limit)
    kind = "data" if config.device.startswith("cuda") or (config.device == "auto" and torch.cuda.is_available()) \
        else "address_space"  # fmt: skip
    return SubprocessChannel(read_paths=[readable, config.data_dir], memory_bytes=memory,
                             memory_limit_kind=kind, cpu_seconds=config.cpu_limit, stall_timeout=config.stall_timeout,
                             timeout=config.timeout, progress=config.progress)  # fmt: skip


def _memory_bytes(text: str) -> int | None:
    """``auto`` (16 GiB or 75% of RAM, whichever is less), ``none``, or a size such as ``8G``/``512M``."""
    text = text.strip().lower()
    if text == "none":
        return None
    if text == "auto":
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return int(min(16 << 30, 0.75 * total))
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    try:
        return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)
    except (ValueError, IndexError):
        raise HarnessError(f"--memory-limit {text!r} is malformed", "use e.g. 8G, 512M, auto or none") from None


def _hash_submission(path: Path, metadata: dict[str, Any]) -> tuple[str, str | None]:
    """sha256 of the submission file and of its weights file, computed by the parent itself."""
    weights = metadata.get("weights")
    if not weights:
        return sha256_file(path), None
    weights_path = (path.parent / str(weights)).resolve()
    if path.parent not in weights_path.parents or not weights_path.is_file():
        raise HarnessError(f"weights file {weights} named in METADATA is not a file next to the submission",
                           "place the weights in the submission's directory")  # fmt: skip
    return sha256_file(path), sha256_file(weights_path)


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def _plan(s, model_row, resolved: ResolvedConfig, suite: SuiteConfig | None, config: RunConfig, checked,
          channel) -> _Plan:  # fmt: skip
    """Reuse a completed identical run, resume an interrupted one, or start a new run."""
    runs = [] if config.fresh else storage.find_runs(s, model_id=model_row.id, config_key=resolved.key())
    now = storage.utcnow()
    for run in runs:
        if run.status == storage.COMPLETE:
            todo = _missing_suite(run, suite)
            if todo is not None:
                _record_suite(run, todo)
            return _Plan(run.id, [], todo, reused=True)
    for run in runs:
        if run.status == storage.RUNNING and ownership.is_alive(run.owner_host, run.owner_pid, run.owner_start,
                                                                 run.heartbeat_at, now):  # fmt: skip
            raise HarnessError(f"an identical run {run.id} is in progress (pid {run.owner_pid})",
                               "wait for it to finish, or pass --fresh for a separate run")  # fmt: skip
        if run.status in (storage.RUNNING, storage.INTERRUPTED):
            if not storage.claim(s, run, now):
                continue
            have = {e.idx for e in run.examples}
            chunks = [c for c in _chunks(resolved.n_examples, resolved.batch_size) if not set(range(*c)) <= have]
            todo = _missing_suite(run, suite)
            if todo is not None:
                _record_suite(run, todo)
            run.status = storage.RUNNING
            return _Plan(run.id, chunks, todo, resumed=True)
    run_id = uuid.uuid4().hex[:12]
    run = storage.RunRecord(
        id=run_id, model_id=model_row.id, status=storage.RUNNING, config_key=resolved.key(),
        config={**asdict(resolved), "device": checked["device"], "data_dir": str(config.data_dir),
                "trusted": config.trusted},
        provenance={**provenance(torch.device(checked["device"])), "sandbox": channel.sandbox_report},
        dataset=resolved.dataset, threat_model=resolved.threat_model, eps=resolved.eps, eps_text=resolved.eps_text,
        n_examples=resolved.n_examples, seed=resolved.seed, attack=resolved.attack, heartbeat_at=now,
        details={"autoattack": {"chunks": {}}}, **ownership.me(),
    )  # fmt: skip
    if suite is not None:
        _record_suite(run, suite)
    s.add(run)
    return _Plan(run_id, _chunks(resolved.n_examples, resolved.batch_size), suite)


def _record_suite(run: storage.RunRecord, suite: SuiteConfig) -> None:
    details = dict(run.details)
    details["interpretability"] = {"settings": suite_settings(suite), "batch_size": suite.batch_size}
    run.details = details


def _missing_suite(run: storage.RunRecord, suite: SuiteConfig | None) -> SuiteConfig | None:
    """The part of ``suite`` that ``run`` has no scores for (None when nothing is missing)."""
    if suite is None:
        return None
    stored = run.details.get("interpretability", {}).get("settings")
    wanted = suite_settings(suite)
    if stored is not None and stored != wanted:
        diff = ", ".join(f"{k} {stored.get(k)} vs {v}" for k, v in wanted.items() if stored.get(k) != v)
        raise HarnessError(f"run {run.id} holds interpretability scores computed with other settings ({diff})",
                           "pass --fresh for a new run, or repeat the stored settings")  # fmt: skip
    have = {(m.method, m.metric) for m in run.metrics}
    todo = [(a, b) for a in suite.methods for b in suite.metrics if (a, b) not in have]
    if not todo:
        return None
    return replace(suite, methods=tuple(dict.fromkeys(a for a, _ in todo)),
                   metrics=tuple(dict.fromkeys(b for _, b in todo)))  # fmt: skip


def _store_chunk(sessions, run_id: str, m: dict[str, Any], x: torch.Tensor, y: torch.Tensor,
                 resolved: ResolvedConfig, info) -> None:  # fmt: skip
    """Validate one attacked chunk against the parent's own data, then commit its per-example rows."""
    if m["op"] != "chunk":
        raise HarnessError(f"unexpected worker message {m['op']!r} during the attack", "this is a bug")
    start, end = int(m["start"]), int(m["end"])
    clean_pred, adv_pred = np.asarray(m["clean_pred"]), np.asarray(m["adv_pred"])
    x_adv = torch.as_tensor(np.asarray(m["x_adv"], dtype=np.float32))
    k = info.num_classes
    if not (0 <= start < end <= len(y)) or clean_pred.shape != (end - start,) or adv_pred.shape != (end - start,) \
            or not ((0 <= clean_pred) & (clean_pred < k) & (0 <= adv_pred) & (adv_pred < k)).all():  # fmt: skip
        raise HarnessError("the worker returned malformed attack results", "the submission may be tampering")
    norms = verify_adversarial(x[start:end], x_adv, threat_model=resolved.threat_model, eps=resolved.eps)
    labels = y[start:end].numpy()
    with storage.transaction(sessions) as s:
        run = s.get(storage.RunRecord, run_id)
        for i in range(end - start):
            clean_ok = bool(clean_pred[i] == labels[i])
            robust_ok = clean_ok and bool(adv_pred[i] == labels[i])
            s.add(storage.ExampleRecord(run_id=run_id, idx=start + i, label=int(labels[i]),
                                        clean_pred=int(clean_pred[i]), adv_pred=int(adv_pred[i]),
                                        clean_correct=clean_ok, robust_correct=robust_ok,
                                        perturbation=float(norms[i])))  # fmt: skip
        _keep_for_figure(s, run_id, start, x_adv, clean_pred, adv_pred, labels)
        details = dict(run.details)
        chunks = dict(details.get("autoattack", {}).get("chunks", {}))
        chunks[str(start)] = {"n": end - start, "accuracy_after": m["accuracy_after"], "warnings": m["warnings"]}
        details["autoattack"] = {**details.get("autoattack", {}), "chunks": chunks}
        run.details, run.heartbeat_at = details, storage.utcnow()


def _keep_for_figure(s, run_id: str, start: int, x_adv: torch.Tensor, clean_pred: np.ndarray, adv_pred: np.ndarray,
                     labels: np.ndarray) -> None:  # fmt: skip
    """Keep FIGURE_ROWS examples for the adversarial-examples figure: successful attacks first, then by index."""
    row = s.get(storage.ArtifactRecord, (run_id, "adversarial"))
    kept = _unpack_all(row.data) if row is not None else None
    idx = np.arange(start, start + len(labels))
    success = (clean_pred == labels) & (adv_pred != labels)
    pool = {"idx": idx, "x_adv": x_adv.numpy(), "clean_pred": clean_pred, "adv_pred": adv_pred, "success": success}
    if kept is not None:
        pool = {key: np.concatenate([kept[key], pool[key]]) for key in pool}
    order = np.lexsort((pool["idx"], ~pool["success"].astype(bool)))[:FIGURE_ROWS]
    s.merge(storage.ArtifactRecord(run_id=run_id, key="adversarial",
                                   data=_pack(**{key: value[order] for key, value in pool.items()})))  # fmt: skip


def _explain(sessions, channel, run_id: str, suite: SuiteConfig) -> None:
    """Ask the worker for the missing scores; store attributions and each score as it arrives."""
    with storage.transaction(sessions) as s:
        run = s.get(storage.RunRecord, run_id)
        clean_pred = np.array([e.clean_pred for e in run.examples], dtype=np.int64)
        done = [[m.method, m.metric] for m in run.metrics]
        cached = {a.key.split(":", 1)[1]: _unpack(a.data) for a in run.artifacts if a.key.startswith("attributions:")}

    def on_message(m: dict[str, Any]) -> None:
        with storage.transaction(sessions) as s:
            run = s.get(storage.RunRecord, run_id)
            if m["op"] == "attributions":
                s.merge(storage.ArtifactRecord(run_id=run_id, key=f"attributions:{m['method']}",
                                               data=_pack(main=m["main"], grid=m["grid"])))  # fmt: skip
            elif m["op"] == "score":
                s.add(metric_record(run_id, str(m["method"]), str(m["metric"]), m["values"], m["details"]))
            run.heartbeat_at = storage.utcnow()

    channel.request({"op": "explain", "suite": asdict(suite), "clean_pred": clean_pred, "done": done,
                     "cached": cached}, on_message=on_message)  # fmt: skip


def _missing_featurevis(sessions, run_id: str, featurevis: FeatureVisConfig) -> bool:
    """True when the run has no featurevis scores; an error when it has some computed with other settings."""
    with storage.transaction(sessions) as s:
        run = s.get(storage.RunRecord, run_id)
        have = any(m.method == featurevis_scores.METHOD for m in run.metrics)
        stored = run.details.get("featurevis", {}).get("settings")
    wanted = json.loads(json.dumps(asdict(featurevis)))
    wanted.pop("batch_size")
    if have and stored is not None and stored != wanted:
        diff = ", ".join(f"{k} {stored.get(k)} vs {v}" for k, v in wanted.items() if stored.get(k) != v)
        raise HarnessError(f"run {run_id} holds feature-visualisation scores computed with other settings ({diff})",
                           "pass --fresh for a new run, or repeat the stored settings")  # fmt: skip
    return not have


def _featurevis(sessions, channel, run_id: str, featurevis: FeatureVisConfig, x: torch.Tensor,
                resolved: ResolvedConfig, info, config: RunConfig) -> None:  # fmt: skip
    """Ask the worker for inversions and generations; score them here with the harness's own data and encoder."""
    featurevis = replace(featurevis, batch_size=resolved.batch_size)
    out = channel.request({"op": "visualise", "config": asdict(featurevis)})
    featurevis_scores.validate(out, x, info.num_classes)
    reference = featurevis_scores.load_reference_for(resolved.dataset)
    n_generated = 0 if "skipped" in out["generation"] else len(featurevis_scores.tensor(out["generation"]["classes"]))
    real, real_labels, real_train = featurevis_scores.real_images(resolved.dataset, config.data_dir,
                                                                  max(n_generated, 2), resolved.seed)  # fmt: skip
    scores = featurevis_scores.score(out, x, real, real_labels, real_train, reference, seed=resolved.seed)
    settings = json.loads(json.dumps(asdict(featurevis)))
    settings.pop("batch_size")
    with storage.transaction(sessions) as s:
        run = s.get(storage.RunRecord, run_id)
        for item in scores:
            s.add(metric_record(run_id, item.method, item.metric, item.values, item.details))
        arrays = _featurevis_arrays(out, x, featurevis, reference)
        s.merge(storage.ArtifactRecord(run_id=run_id, key="featurevis", data=_pack(**arrays)))
        run.details = {**run.details, "featurevis": {"settings": settings}}
        run.heartbeat_at = storage.utcnow()


def _featurevis_arrays(out: dict[str, Any], x: torch.Tensor, featurevis: FeatureVisConfig,
                       reference: featurevis_scores.Reference) -> dict[str, Any]:  # fmt: skip
    """The images the run's feature-visualisation figures show (noise seeds are redrawn: they are seeded)."""
    from metrics.featurevis.inversion import noise_seeds

    tensor = featurevis_scores.tensor
    arrays: dict[str, Any] = {}
    inv, gen = out["inversion"], out["generation"]
    if "skipped" not in inv:
        k = min(FIGURE_ROWS, len(tensor(inv["targets"])))
        arrays["inv_targets"] = x[:k].numpy()
        other = inv["kinds"]["other image"]
        arrays["inv_seed_other"] = x[tensor(other["seed_index"])[:k].long()].numpy()
        arrays["inv_other"] = tensor(other["images"])[:k].numpy()
        arrays["inv_noise"] = tensor(inv["kinds"]["noise"]["images"])[:k].numpy()
        noise = noise_seeds((len(tensor(inv["targets"])), *x.shape[1:]), amplitude=featurevis.noise_amplitude,
                            generator=torch.Generator().manual_seed(featurevis.seed))  # fmt: skip
        arrays["inv_seed_noise"] = noise[:k].numpy()
    if "skipped" not in gen:
        arrays["gen_images"] = tensor(gen["images"]).numpy()
        arrays["gen_classes"] = tensor(gen["classes"]).numpy()
        if reference.model is not None:
            with torch.no_grad():
                arrays["gen_judge"] = reference.model(tensor(gen["images"]).float()).argmax(1).numpy()
    return arrays


def run_files_dir(db_url: str, run_id: str) -> Path | None:
    """Where a run's figures go: ``runs/<run id>/`` beside a SQLite database file (None for other databases)."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve().parent / "runs" / run_id


def _figures(sessions, run_id: str, directory: Path, x: torch.Tensor, y: torch.Tensor, resolved: ResolvedConfig,
             info) -> None:  # fmt: skip
    """Write the run's figures from its stored artifacts (attributions, adversarial examples, visualisations)."""
    from harness import figures

    with storage.transaction(sessions) as s:
        run = s.get(storage.RunRecord, run_id)
        artifacts = {a.key: _unpack_all(a.data) for a in run.artifacts}
        examples = sorted(run.examples, key=lambda e: e.idx)[:FIGURE_ROWS]
    names, k = list(info.classes), min(FIGURE_ROWS, len(x))
    try:
        attributions = {key.split(":", 1)[1]: a["main"][:k] for key, a in artifacts.items()
                        if key.startswith("attributions:")}  # fmt: skip
        if attributions:
            k_attr = min(len(a) for a in attributions.values())
            figures.attribution_grid(x[:k_attr], y[:k_attr], {m: a[:k_attr] for m, a in attributions.items()},
                                     directory / "attributions.png", class_names=names,
                                     title=f"Attributions on the first {k_attr} test images")  # fmt: skip
        adv = artifacts.get("adversarial")
        if adv is not None and examples:
            rows = torch.as_tensor(adv["idx"]).long()
            figures.adversarial_examples(x[rows], adv["x_adv"], y[rows], adv["clean_pred"], adv["adv_pred"],
                                         directory / "adversarial.png", class_names=names, eps=resolved.eps,
                                         threat_model=resolved.threat_model)  # fmt: skip
        fv = artifacts.get("featurevis", {})
        if "inv_targets" in fv:
            seeds = {"other image": fv["inv_seed_other"], "noise": fv["inv_seed_noise"]}
            figures.inversion_grid(fv["inv_targets"], seeds, {"other image": fv["inv_other"], "noise": fv["inv_noise"]},
                                   directory / "inversions.png", title="Representation inversion")  # fmt: skip
        if "gen_images" in fv:
            figures.generated_grid(fv["gen_images"], fv["gen_classes"], directory / "generated.png",
                                   class_names=names, judge_pred=fv.get("gen_judge"),
                                   title="Class-specific generation")
    except OSError as exc:
        raise HarnessError(f"cannot write the run's figures to {directory}: {exc.strerror or exc}",
                           "make the results directory writable, or pass --db to a writable location") from None


def _pack(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items() if v is not None})
    return buffer.getvalue()


def _unpack_all(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {key: f[key] for key in f.files}


def _unpack(data: bytes) -> dict[str, np.ndarray | None]:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {"main": f["main"], "grid": f["grid"] if "grid" in f.files else None}


def _finish(s, run: storage.RunRecord, resolved: ResolvedConfig, metadata: dict[str, Any],
            contract_flags: list[str], seconds: dict[str, float]) -> None:  # fmt: skip
    """Aggregate the chunks, set flags and mark the run complete (one transaction)."""
    examples = run.examples
    if len(examples) != resolved.n_examples:
        raise HarnessError(f"run {run.id} has {len(examples)} of {resolved.n_examples} examples", "this is a bug")
    run.clean_acc = sum(e.clean_correct for e in examples) / len(examples)
    run.robust_acc = sum(e.robust_correct for e in examples) / len(examples)
    details = dict(run.details)
    autoattack = dict(details.get("autoattack", {}))
    autoattack["accuracy_after"] = _aggregate(autoattack.get("chunks", {}))
    autoattack["warnings"] = sorted({w for c in autoattack.get("chunks", {}).values() for w in c["warnings"]})
    details["autoattack"] = autoattack
    run.details = details
    run.flags = run_flags(autoattack, contract_flags, metadata, run.clean_acc, len(examples), resolved.attack)
    other_weights = s.scalars(select(storage.ModelRecord.weights_sha256).where(
        storage.ModelRecord.name == run.model.name, storage.ModelRecord.source == run.model.source,
        storage.ModelRecord.id != run.model_id)).all()  # fmt: skip
    if any(w != run.model.weights_sha256 for w in other_weights):
        run.flags = [*run.flags, {"code": "weights-changed", "message": (
            f"earlier runs of {run.model.name} from {run.model.source} used a checkpoint with a different sha256")}]
    run.timings = {**(run.timings or {}), **seconds}
    s.execute(delete(storage.ArtifactRecord).where(storage.ArtifactRecord.run_id == run.id))
    run.status, run.finished_at, run.owner_pid = storage.COMPLETE, storage.utcnow(), None


def _aggregate(chunks: dict[str, Any]) -> dict[str, float]:
    """AutoAttack's per-attack robust accuracy over all chunks (weighted by chunk size)."""
    total = sum(c["n"] for c in chunks.values())
    keys = dict.fromkeys(k for c in chunks.values() for k in c["accuracy_after"])
    out = {}
    for key in keys:
        # an attack that a chunk skipped (no robust point left) leaves that chunk's last accuracy unchanged
        acc = 0.0
        for c in chunks.values():
            after = c["accuracy_after"]
            acc += c["n"] * after.get(key, min(after.values()) if after else 0.0)
        out[key] = acc / total if total else float("nan")
    return out


def _fail(sessions, run_id: str, exc: BaseException) -> None:
    interrupted = isinstance(exc, KeyboardInterrupt)
    message = "interrupted" if interrupted else f"{type(exc).__name__}: {exc}"
    try:
        with storage.transaction(sessions) as s:
            s.execute(update(storage.RunRecord).where(storage.RunRecord.id == run_id,
                                                      storage.RunRecord.status == storage.RUNNING)
                      .values(status=storage.INTERRUPTED if interrupted else storage.FAILED, error=message[:2000],
                              finished_at=storage.utcnow(), owner_pid=None))  # fmt: skip
    except HarnessError:
        pass  # the database itself is the problem; the run stays 'running' and is seen as interrupted later


def metric_record(run_id: str, method: str, metric: str, values: list[Any], details: dict[str, Any]
                  ) -> storage.MetricRecord:  # fmt: skip
    """One stored score: summary statistics of the per-example values (``details["interval"]``, where a score
    brings its own interval, e.g. FID's bootstrap over images, replaces the bootstrap of the mean)."""
    values = [float(v) for v in values]
    mean, std, low, high = summarise(values)
    if "interval" in details:
        low, high = details["interval"]
    return storage.MetricRecord(run_id=run_id, method=method, metric=metric, mean=mean, std=std, n=len(values),
                                ci_low=low, ci_high=high, values=values, details=details)  # fmt: skip


def summarise(values: list[float]) -> tuple[float | None, float | None, float | None, float | None]:
    """Mean, sample std, and 95% bootstrap interval of the mean (None where undefined)."""
    if not values:
        return None, None, None, None
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else None
    low, high = bootstrap_interval(arr)
    return float(arr.mean()), std, (None if np.isnan(low) else low), (None if np.isnan(high) else high)
