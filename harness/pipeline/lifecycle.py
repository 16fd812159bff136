"""A run's lifecycle in the database: reuse, resume or start it (:func:`open_run`, which says what is left to
compute: a :class:`Todo`), mark it complete (:func:`finish`) or failed (:func:`fail`), and the per-stage timer."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import torch
from sqlalchemy import delete, select, update

from harness import store
from harness.attack.sanity import run_flags
from harness.core.config import ResolvedConfig
from harness.core.errors import HarnessError
from harness.pipeline.plan import RunPlan, Storage, Todo, attack_chunks
from harness.pipeline.provenance import provenance
from harness.pipeline.resolve import suite_settings
from harness.store import liveness
from harness.store.verify import run_problems
from metrics.suite import SuiteConfig


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


def open_run(s, model_row, plan: RunPlan, *, device: str, sandbox: dict[str, Any]) -> Todo:
    """Reuse a completed identical run, resume an interrupted one, or start a new run of ``model_row`` as ``plan``
    says, on the worker's ``device`` (the sandbox's report is recorded with a new run). Returns what is left to
    compute. An identical run is one with the same model and ``plan.resolved`` (its key); a completed one is reused
    only when its stored numbers are those of its rows (harness.store.verify: a forged or damaged row is not)."""
    resolved, suite, storage = plan.resolved, plan.suite, plan.storage
    runs = [] if storage.fresh else store.find_runs(s, model_id=model_row.id, config_key=resolved.key())
    now = store.utcnow()
    for run in runs:
        if run.status == store.COMPLETE and not run_problems(run):
            if storage.rescore:
                _clear_scores(s, run, device)
            todo = _missing_suite(run, suite)
            if todo is not None:
                _record_suite(run, todo)
            _tag_sweep(run, storage)
            return Todo(run.id, [], todo, reused=True)
    for run in runs:
        if run.status == store.RUNNING and liveness.is_alive(
            run.owner_host, run.owner_pid, run.owner_start, run.heartbeat_at, now
        ):
            raise HarnessError(
                f"an identical run {run.id} is in progress (pid {run.owner_pid})",
                "wait for it to finish, or pass --fresh for a separate run",
            )
        if run.status in (store.RUNNING, store.INTERRUPTED):
            if not store.claim(s, run, now):
                continue
            have = {e.idx for e in run.examples}
            chunks = [c for c in attack_chunks(resolved.n_examples, resolved.batch_size) if not set(range(*c)) <= have]
            todo = _missing_suite(run, suite)
            if todo is not None:
                _record_suite(run, todo)
            run.status = store.RUNNING
            _tag_sweep(run, storage)
            return Todo(run.id, chunks, todo, resumed=True)
    run_id = uuid.uuid4().hex[:12]
    run = store.RunRecord(
        id=run_id,
        model_id=model_row.id,
        status=store.RUNNING,
        config_key=resolved.key(),
        config={
            **asdict(resolved),
            "device": device,
            "data_dir": str(plan.data_dir),
            "trusted": plan.limits.trusted,
        },
        provenance={**provenance(torch.device(device)), "sandbox": sandbox},
        dataset=resolved.dataset,
        threat_model=resolved.threat_model,
        eps=resolved.eps,
        eps_text=resolved.eps_text,
        n_examples=resolved.n_examples,
        seed=resolved.seed,
        attack=resolved.attack,
        heartbeat_at=now,
        details={"autoattack": {"chunks": {}}},
        **liveness.me(),
    )
    if suite is not None:
        _record_suite(run, suite)
    _tag_sweep(run, storage)
    s.add(run)
    return Todo(run_id, attack_chunks(resolved.n_examples, resolved.batch_size), suite)


def _tag_sweep(run: store.RunRecord, storage: Storage) -> None:
    """Mark the run as the job of a ``robint-bench sweep`` entry (harness.store.sweeps), when it is one."""
    if storage.sweep is not None:
        from harness.store.sweeps import tag

        run.details = tag(dict(run.details or {}), dict(storage.sweep))


def _clear_scores(s, run: store.RunRecord, device: str) -> None:
    """``--rescore``: drop a completed run's interpretability and feature-visualisation scores (its attack results
    stay), recording when and with which code the new scores are computed."""
    s.execute(delete(store.MetricRecord).where(store.MetricRecord.run_id == run.id))
    details = {k: v for k, v in run.details.items() if k not in ("interpretability", "featurevis")}
    prov = provenance(torch.device(device))
    details["rescored"] = {"at": store.utcnow().isoformat(), "git": prov["git"], "versions": prov["versions"]}
    run.details = details
    s.expire(run, ["metrics"])


def _record_suite(run: store.RunRecord, suite: SuiteConfig) -> None:
    details = dict(run.details)
    details["interpretability"] = {"settings": suite_settings(suite), "batch_size": suite.batch_size}
    run.details = details


def _missing_suite(run: store.RunRecord, suite: SuiteConfig | None) -> SuiteConfig | None:
    """The part of ``suite`` that ``run`` has no scores for (None when nothing is missing)."""
    if suite is None:
        return None
    stored = run.details.get("interpretability", {}).get("settings")
    wanted = suite_settings(suite)
    if stored is not None and stored != wanted:
        diff = ", ".join(f"{k} {stored.get(k)} vs {v}" for k, v in wanted.items() if stored.get(k) != v)
        raise HarnessError(
            f"run {run.id} holds interpretability scores computed with other settings ({diff})",
            "pass --fresh for a new run, or repeat the stored settings",
        )
    have = {(m.method, m.metric) for m in run.metrics}
    return suite if any(pair not in have for pair in suite.pairs()) else None  # the worker skips stored pairs


def finish(
    sessions,
    run_id: str,
    todo: Todo,
    resolved: ResolvedConfig,
    metadata: dict[str, Any],
    contract_flags: list[str],
    seconds: dict[str, float],
) -> store.RunRecord:
    """Mark the run complete (one transaction); a reused run only drops the artifacts its new scores needed."""
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        if todo.reused:
            s.execute(delete(store.ArtifactRecord).where(store.ArtifactRecord.run_id == run.id))
        else:
            _complete(s, run, resolved, metadata, contract_flags, seconds)
        return run


def _complete(
    s,
    run: store.RunRecord,
    resolved: ResolvedConfig,
    metadata: dict[str, Any],
    contract_flags: list[str],
    seconds: dict[str, float],
) -> None:
    """Aggregate the chunks, set flags and mark the run complete."""
    examples = run.examples
    if len(examples) != resolved.n_examples:
        raise HarnessError(f"run {run.id} has {len(examples)} of {resolved.n_examples} examples", "this is a bug")
    unverified = [k for k, c in run.details.get("autoattack", {}).get("chunks", {}).items() if "probe" not in c]
    if unverified:
        raise HarnessError(f"run {run.id}: the fresh worker did not classify chunks {unverified}", "this is a bug")
    run.clean_acc = sum(e.clean_correct for e in examples) / len(examples)
    run.robust_acc = sum(e.robust_correct for e in examples) / len(examples)
    details = dict(run.details)
    autoattack = dict(details.get("autoattack", {}))
    autoattack["accuracy_after"] = _aggregate(autoattack.get("chunks", {}))
    autoattack["warnings"] = sorted({w for c in autoattack.get("chunks", {}).values() for w in c["warnings"]})
    details["autoattack"] = autoattack
    run.details = details
    run.flags = run_flags(autoattack, contract_flags, metadata, run.clean_acc, len(examples), resolved.attack)
    other_weights = s.scalars(
        select(store.ModelRecord.weights_sha256).where(
            store.ModelRecord.name == run.model.name,
            store.ModelRecord.source == run.model.source,
            store.ModelRecord.id != run.model_id,
        )
    ).all()
    if any(w != run.model.weights_sha256 for w in other_weights):
        run.flags = [
            *run.flags,
            {
                "code": "weights-changed",
                "message": f"earlier runs of {run.model.name} from {run.model.source} used a checkpoint with a "
                "different sha256",
            },
        ]
    run.timings = {**(run.timings or {}), **seconds}
    s.execute(delete(store.ArtifactRecord).where(store.ArtifactRecord.run_id == run.id))
    run.status, run.finished_at, run.owner_pid = store.COMPLETE, store.utcnow(), None


def aggregate_autoattack(sessions, run_id: str) -> dict[str, float]:
    """AutoAttack's per-attack accuracies over the run's stored chunks so far (as :func:`finish` stores them)."""
    with store.transaction(sessions) as s:
        return _aggregate(s.get(store.RunRecord, run_id).details.get("autoattack", {}).get("chunks", {}))


def record_details(sessions, run_id: str, key: str, value: Any) -> None:
    """Store ``value`` under the run's ``details[key]`` (one transaction)."""
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        run.details = {**(run.details or {}), key: value}


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


def fail(sessions, run_id: str, exc: BaseException) -> None:
    interrupted = isinstance(exc, KeyboardInterrupt)
    message = "interrupted" if interrupted else f"{type(exc).__name__}: {exc}"
    try:
        with store.transaction(sessions) as s:
            s.execute(
                update(store.RunRecord)
                .where(store.RunRecord.id == run_id, store.RunRecord.status == store.RUNNING)
                .values(
                    status=store.INTERRUPTED if interrupted else store.FAILED,
                    error=message[:2000],
                    finished_at=store.utcnow(),
                    owner_pid=None,
                )
            )
    except HarnessError:
        pass  # the database itself is the problem; the run stays 'running' and is seen as interrupted later
