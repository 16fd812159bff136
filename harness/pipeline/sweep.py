"""Sweeps: many models, one job each, through submitit (Slurm where it is available, its local executor otherwise).

Every job is one :func:`harness.pipeline.evaluate.evaluate` of one model, writing to the shared database (a server
on a cluster: jobs land on other nodes); robint-bench schedules nothing itself. The sweep has an id (``--name``, or
a hash of its entries and settings, so the same command gets the same id) and a manifest in the database
(harness.store.sweeps); each run it starts or reuses is tagged with it. Rerunning the sweep skips the entries that
have a complete run with the same settings, and submits the others: ``evaluate`` resumes an interrupted run from
its last committed chunk and reuses an identical completed one. ``robint-bench runs --sweep ID`` shows how far the
sweep got, while it runs too.

A sweep takes submission files, RobustBench zoo ids, the models of a zoo spec (harness/train/zoo.py: the
``robint-bench zoo`` models, each with its spec's evaluation settings), or a JSON config file::

    {"name": "cifar10-linf",
     "run": {"dataset": "cifar10", "threat_model": "Linf", "n_examples": 1000},
     "models": ["submissions/foo.py", {"robustbench": "Standard"},
                {"model": "submissions/bar.py", "run": {"seed": 1}}, {"zoo": "submissions/zoo/zoo.json"}],
     "slurm": {"partition": "gpu", "gpus": 1, "time_limit": 240}}

(paths relative to the file; ``run`` holds ``robint-bench run`` settings by their RunConfig names, the command
line's own settings apply where the file sets none).

One module because a sweep's parts (expanding the models, submitting the jobs, the job's own entry point and
collecting their state) share one job record and change together.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from harness import store
from harness.core.config import RunConfig
from harness.core.errors import HarnessError
from harness.pipeline.batching import chunk_size
from harness.store.sweeps import MAX_ID, load_sweep, progress_line, save_sweep, sweep_status

EXECUTORS = ("auto", "slurm", "local")
# RunConfig fields that do not change what a run measures (left out of an entry's key)
_NOT_IN_KEY = (
    "db",
    "progress",
    "sweep",
    "preset",  # applied before the key is taken: its settings are in the key
    "device",
    "data_dir",
    "model_dir",
    "trusted",
    "stall_timeout",
    "timeout",
    "memory_limit",
    "cpu_limit",
    "fresh",
    "rescore",
    "batch_size",
    "chunk_size",
)
_RUN_KEYS = {f.name for f in fields(RunConfig)} - {"model", "robustbench", "db", "sweep", "progress"}


@dataclass
class Entry:
    """One job of a sweep: a model and the configuration it is evaluated with."""

    name: str
    config: RunConfig

    @property
    def key(self) -> str:
        return entry_key(self.config)


@dataclass
class Cluster:
    """Where the jobs run: ``auto`` (Slurm when ``sbatch`` is there, else local), ``slurm`` or ``local``."""

    executor: str = "auto"
    partition: str | None = None
    gpus: int | None = None  # per job (None: 1 on Slurm, 0 locally)
    time_limit: int = 240  # minutes per job
    cpus: int | None = None
    mem_gb: float | None = None
    parallel: int | None = None  # jobs at once: local processes, or the Slurm array's (None: 1 locally, 64 on Slurm)
    folder: Path = Path("results/sweeps")


@dataclass
class JobResult:
    name: str
    status: str  # skipped, stored, reused, resumed, failed, submitted
    run_id: str | None = None
    clean_acc: float | None = None
    robust_acc: float | None = None
    error: str | None = None
    job_id: str | None = None


def entry_key(config: RunConfig) -> str:
    """A hash of what the entry's run measures (the model and the settings that define its numbers)."""
    data = {k: v for k, v in config.to_json().items() if k not in _NOT_IN_KEY}
    data["chunk"] = chunk_size(config.batch_size, config.chunk_size)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def sweep_id(entries: list[Entry]) -> str:
    """The default id: a hash of the entries and their settings (the same sweep command gets the same id)."""
    text = json.dumps(sorted((e.name, e.key) for e in entries))
    return "sweep-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def collect_entries(
    *,
    submissions: tuple[Path, ...] = (),
    robustbench: tuple[str, ...] = (),
    zoo: Path | None = None,
    only: list[str] | None = None,
    config_file: Path | None = None,
    settings: dict[str, Any],
) -> tuple[list[Entry], dict[str, Any]]:
    """The sweep's entries from the command line and/or a config file; returns them and the file's ``slurm`` options.

    ``settings`` are the command line's RunConfig settings (db, data_dir... included); a config file's ``run``
    settings win over them, an entry's own ``run`` over both."""
    base = dict(settings)
    entries: list[Entry] = []
    cluster: dict[str, Any] = {}
    if config_file is not None:
        data = _read_config(config_file)
        root = config_file.resolve().parent
        cluster = data.get("slurm", {})
        base.update(_run_settings(data.get("run", {}), str(config_file)))
        for i, item in enumerate(data.get("models", [])):
            entries += _file_entry(item, root, base, f"{config_file}: models[{i}]")
        if data.get("name"):
            cluster = {**cluster, "name": str(data["name"])}
    entries += [_model_entry(Path(p).resolve(), base) for p in submissions]
    entries += [_zoo_id_entry(model_id, base) for model_id in robustbench]
    if zoo is not None:
        entries += _zoo_entries(zoo, only, base)
    if not entries:
        raise HarnessError(
            "the sweep has no models", "give submission files, --robustbench IDs, --zoo SPEC or --config FILE"
        )
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise HarnessError(f"the sweep lists {', '.join(duplicates)} twice", "give each model once")
    return entries, cluster


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise HarnessError(f"cannot read the sweep config {path}: {exc.strerror}", "check the path") from None
    except json.JSONDecodeError as exc:
        raise HarnessError(f"the sweep config {path} is not JSON ({exc.msg}, line {exc.lineno})", "fix it") from None
    unknown = set(data) - {"name", "run", "models", "slurm"} if isinstance(data, dict) else {"?"}
    if unknown or not isinstance(data.get("models", []), list):
        raise HarnessError(
            f"the sweep config {path} has unexpected keys {sorted(unknown)}", "keys: name, run, models, slurm"
        )
    return data


def _run_settings(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or set(raw) - _RUN_KEYS:
        bad = sorted(set(raw) - _RUN_KEYS) if isinstance(raw, dict) else raw
        raise HarnessError(f"{where}: unknown run settings {bad}", "use `robint-bench run` option names with _")
    out = dict(raw)
    for key in ("method_options", "featurevis_options"):
        if key in out:
            out[key] = tuple(out[key])
    for key in ("data_dir", "model_dir"):
        if out.get(key) is not None:
            out[key] = Path(out[key]).resolve()
    return out


def _file_entry(item: Any, root: Path, base: dict[str, Any], where: str) -> list[Entry]:
    if isinstance(item, str):
        item = {"model": item}
    if not isinstance(item, dict) or len({"model", "robustbench", "zoo"} & set(item)) != 1:
        raise HarnessError(
            f"{where}: expected a path or one of model, robustbench, zoo", "see harness/pipeline/sweep.py"
        )
    settings = {**base, **_run_settings(item.get("run", {}), where)}
    if "model" in item:
        return [_model_entry((root / item["model"]).resolve(), settings)]
    if "robustbench" in item:
        return [_zoo_id_entry(str(item["robustbench"]), settings)]
    return _zoo_entries((root / item["zoo"]).resolve(), item.get("only"), settings)


def _model_entry(path: Path, settings: dict[str, Any]) -> Entry:
    if not path.is_file():
        raise HarnessError(f"submission {path} does not exist", "check the path")
    return Entry(path.stem, RunConfig(model=path, **settings))


def _zoo_id_entry(model_id: str, settings: dict[str, Any]) -> Entry:
    config = RunConfig(robustbench=model_id, **settings)
    if config.dataset is None:
        raise HarnessError(f"--robustbench {model_id} needs --dataset", "e.g. --dataset cifar10 --threat-model Linf")
    return Entry(f"{model_id}@{config.dataset}-{config.threat_model or 'Linf'}", config)


def _zoo_entries(spec_path: Path, only: list[str] | None, settings: dict[str, Any]) -> list[Entry]:
    """The trained models of a zoo spec, each with the spec's evaluation settings (``robint-bench zoo``'s runs)."""
    from harness.pipeline.zoo import run_config
    from harness.train.zoo import load_spec

    spec = load_spec(spec_path)
    chosen = spec.select(only)
    missing = [e.name for e in chosen if not e.trained()]
    if missing:
        raise HarnessError(
            f"zoo models not trained yet: {', '.join(missing)}",
            f"train them first (robint-bench zoo --spec {spec_path} --train-only), or leave them out with --only",
        )
    common = {k: v for k, v in settings.items() if k not in ("model", "robustbench")}
    # the spec's settings win over the command line's defaults, as in `robint-bench zoo`
    spec_keys = set(spec.evaluate) | {k for e in chosen for k in e.evaluate}
    common = {k: v for k, v in common.items() if k not in spec_keys}
    return [Entry(e.name, run_config(spec, e.name, None, **common)) for e in chosen]


def run_job(config: dict[str, Any]) -> dict[str, Any]:
    """One sweep job, where submitit runs it: evaluate one model and report (a user error is reported, not raised,
    so the sweep can print it as one line)."""
    from harness.pipeline.evaluate import evaluate

    start = time.perf_counter()
    try:
        summary = evaluate(RunConfig.from_json(config))
    except HarnessError as exc:
        return {"status": "failed", "error": str(exc), "seconds": time.perf_counter() - start}
    return {
        "status": "reused" if summary.reused else "resumed" if summary.resumed else "stored",
        "run_id": summary.run_id,
        "clean_acc": summary.clean_acc,
        "robust_acc": summary.robust_acc,
        "seconds": time.perf_counter() - start,
    }


def run_sweep(
    entries: list[Entry],
    *,
    db: str,
    cluster: Cluster,
    name: str | None = None,
    wait: bool = True,
    echo: Callable[[str], None] = print,
) -> tuple[str, list[JobResult]]:
    """Submit one job per entry without a complete run in this sweep; with ``wait``, wait and report each.
    Returns the sweep id and the per-entry results."""
    sid = name or sweep_id(entries)
    if len(sid) > MAX_ID or not sid.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise HarnessError(f"sweep name {sid!r} must be letters, digits, . _ - (at most {MAX_ID})", "pick another")
    db = _absolute(db)
    executor = _executor(cluster, sid)
    if executor.cluster == "slurm" and db.startswith("sqlite"):
        raise HarnessError(
            "a sweep on Slurm runs its jobs on other nodes, and --db is a SQLite file on one machine",
            "pass --db postgresql+psycopg://USER@HOST/DB (pip install -e .[postgres])",
        )
    sessions = store.open_database(db)  # created (and migrated) once, before the jobs open it
    manifest = [{"name": e.name, "key": e.key} for e in entries]
    with store.transaction(sessions) as s:
        save_sweep(s, sid, manifest, {"executor": executor.cluster, "db": store_url(db)})
        statuses = sweep_status(s, sid, manifest)
    results: list[JobResult] = []
    todo = []
    for entry, status in zip(entries, statuses, strict=True):
        if status.status == store.COMPLETE:
            results.append(JobResult(entry.name, "skipped", status.run.id, status.run.clean_acc, status.run.robust_acc))
            echo(f"skip  {entry.name}: complete run {status.run.id}")
        else:
            config = replace(
                entry.config, db=db, progress=False, sweep={"id": sid, "entry": entry.name, "key": entry.key}
            )
            todo.append((entry, config))
    echo(f"sweep {sid}: {len(todo)} job(s) to run on {executor.cluster} ({len(entries) - len(todo)} complete)")
    if todo:
        echo(f"  follow it from another shell: robint-bench runs --sweep {sid} --db {store_url(db)}")
        echo(f"  job logs: {Path(cluster.folder).resolve() / sid}/<job id>/ (its stdout and stderr)")
        parallel = cluster.parallel or (64 if executor.cluster == "slurm" else 1)
        results += _submit(executor, todo, parallel, wait, echo)
    with store.transaction(sessions) as s:
        echo(progress_line(sid, sweep_status(s, sid, manifest)))
    return sid, results


def _submit(executor, todo, parallel: int, wait: bool, echo) -> list[JobResult]:
    """Submit the jobs (the local executor at most ``parallel`` at a time) and, with ``wait``, collect them."""
    if executor.cluster == "slurm":
        with executor.batch():
            jobs = [executor.submit(run_job, config.to_json()) for _, config in todo]
        if not wait:
            for (entry, _), job in zip(todo, jobs, strict=True):
                echo(f"submitted {entry.name}: job {job.job_id}, log {job.paths.stderr}")
            return [JobResult(e.name, "submitted", job_id=j.job_id) for (e, _), j in zip(todo, jobs, strict=True)]
        return [_collect(entry, job, echo) for (entry, _), job in zip(todo, jobs, strict=True)]
    results, running, queue = [], [], list(todo)
    while queue or running:
        while queue and len(running) < max(1, parallel):
            entry, config = queue.pop(0)
            job = executor.submit(run_job, config.to_json())
            echo(f"start {entry.name}: job {job.job_id}, log {job.paths.stderr}")
            running.append((entry, job))
        time.sleep(0.5)
        for item in [r for r in running if r[1].done()]:
            running.remove(item)
            results.append(_collect(*item, echo))
    return results


def _collect(entry: Entry, job, echo) -> JobResult:
    try:
        out = job.result()
    except Exception as exc:  # noqa: BLE001  (a crashed job: its last line, the log is in the job folder)
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        error = f"{lines[-1].strip() if lines else type(exc).__name__} (log: {job.paths.stderr})"
        echo(f"fail  {entry.name}: {error}")
        return JobResult(entry.name, "failed", error=error, job_id=str(job.job_id))
    if out["status"] == "failed":
        echo(f"fail  {entry.name}: {out['error']}")
        return JobResult(entry.name, "failed", error=out["error"], job_id=str(job.job_id))
    echo(
        f"done  {entry.name}: {out['status']} run {out['run_id']} in {out['seconds']:.0f} s: clean "
        f"{100 * out['clean_acc']:.1f}%, robust {100 * out['robust_acc']:.1f}%"
    )
    return JobResult(
        entry.name, out["status"], out["run_id"], out["clean_acc"], out["robust_acc"], None, str(job.job_id)
    )


def _executor(cluster: Cluster, sid: str):
    """The submitit executor for ``cluster``: one job is one process with ``gpus`` GPUs for ``time_limit`` minutes."""
    try:
        import submitit
    except ImportError:
        raise HarnessError("robint-bench sweep needs submitit, which is not installed", "pip install -e .") from None
    if cluster.executor not in EXECUTORS:
        raise HarnessError(f"--executor {cluster.executor!r} is unknown", f"use one of {', '.join(EXECUTORS)}")
    kind = None if cluster.executor == "auto" else cluster.executor
    folder = Path(cluster.folder).resolve() / sid
    try:
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster=kind)
    except (RuntimeError, ValueError) as exc:
        raise HarnessError(
            f"--executor {cluster.executor}: {exc}", "use --executor local, or run on a Slurm host"
        ) from None
    slurm = executor.cluster == "slurm"
    gpus = cluster.gpus if cluster.gpus is not None else (1 if slurm else 0)
    params: dict[str, Any] = {"timeout_min": cluster.time_limit, "name": f"robint-{sid}", "gpus_per_node": gpus}
    if cluster.cpus is not None:
        params["cpus_per_task"] = cluster.cpus
    if cluster.mem_gb is not None:
        params["mem_gb"] = cluster.mem_gb
    if slurm:
        params["slurm_array_parallelism"] = cluster.parallel or 64
        if cluster.partition:
            params["slurm_partition"] = cluster.partition
    executor.update_parameters(**params)
    return executor


def print_progress(db: str, sid: str, echo: Callable[[str], None] = print) -> None:
    """``robint-bench runs --sweep ID``: one line per model of the sweep (status, run, examples and scores so far),
    then how many are complete, running, interrupted, failed or not started."""
    with store.transaction(store.open_database(db, create=False)) as s:
        manifest = load_sweep(s, sid)
        if manifest is None:
            raise HarnessError(f"no sweep {sid!r} in the database", "the sweep command prints its id")
        statuses = sweep_status(s, sid, manifest["entries"])
        width = max((len(e.name) for e in statuses), default=0)
        for e in statuses:
            run = e.run
            where = (
                f"{run.id}  examples {len(run.examples)}/{run.n_examples}, scores {len(run.metrics)}"
                if run is not None
                else "no run yet"
            )
            echo(f"{e.name:<{width}}  {e.status:<11} {where}")
        echo(progress_line(sid, statuses))


def store_url(db: str) -> str:
    """The database URL without its password (for the manifest)."""
    from sqlalchemy.engine import make_url

    return make_url(db).render_as_string(hide_password=True)


def _absolute(db: str) -> str:
    """A SQLite URL with an absolute path (jobs may start in another directory)."""
    if db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
        path, _, query = db[len("sqlite:///") :].partition("?")
        return f"sqlite:///{Path(path).resolve()}" + (f"?{query}" if query else "")
    return db
