"""Stage times, GPU utilisation per stage, and where the explain stage's time goes, for one evaluation.

    python bench/profile_run.py [--model submissions/fmnist_standard.py] [--n-examples 1000] [--attack standard]
        [--device auto] [--metrics default] [--methods default] [--n-explain 100] [--n-sanity 16]
        [--n-composites 16] [--featurevis/--no-featurevis] [--torch-profile/--no-torch-profile] [--top 25]
        [--interval-ms 200] [--json PATH]

One evaluation through the public API (``harness.evaluate``: the model in this process, as ``run --trusted``; a fresh
run in a temporary SQLite database), reporting:

- the run's stored stage timings (``load``, ``contract``, ``attack``, ``explain``, ``featurevis``, ``figures``);
- on CUDA, the GPU's utilisation (the share of time a kernel was running) sampled every ``--interval-ms`` through NVML
  (``pynvml``) when importable, else ``nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used -lms``, averaged
  over each stage's wall-clock window; on a CPU it says n/a;
- the explain stage's parts: the GridPG composites, each method's attributions, each metric's scoring (over methods
  and controls), and the parent's per-score summaries (the bootstrap interval), each with its seconds and GPU
  utilisation; the rest of the stage (messages, validation, storage) is the remainder;
- with ``--torch-profile`` (default), a torch.profiler summary of the explain stage: the top operators by self CPU
  time, and the shares of the stage's wall time that torch operators' CPU time and GPU kernels account for (the rest
  is Python, NumPy and waiting). The profiler's own overhead is inside that stage's time and windows; compare stage
  times before and after a change with the same setting.

The windows come from wrapping, in this process only, the pipeline's stage timer
(``harness.pipeline.lifecycle.StageTimer``) and ``metrics.suite``'s private steps; nothing in the pipeline changes.
Where one of them is not found (the code moved), that part is reported as not instrumented and the rest still runs.
Last line, read by scripts: ``explain_seconds: S gpu_util_explain: U`` (U: mean utilisation in percent, or n/a).

Long because it is one self-contained script (bench scripts run as files and do not import each other): the sampler,
the instruments, the profiler summary and the report are one measurement, each part small and tested on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import math
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("load", "contract", "attack", "explain", "featurevis", "figures")


@dataclass(frozen=True)
class Sample:
    """One GPU reading: wall-clock time (``time.time()``), utilisation in percent, memory used in MiB."""

    t: float
    util: float
    memory_mib: float


def parse_smi_line(line: str) -> Sample | None:
    """A ``nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits`` line
    (``2026/11/13 12:34:56.789, 37, 1234``), or None for anything else (a header, ``[N/A]``)."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != 3:
        return None
    try:
        t = datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()  # local time, as time.time() counts
        return Sample(t, float(parts[1]), float(parts[2]))
    except ValueError:
        return None


def window_stats(samples: list[Sample], windows: list[tuple[float, float]]) -> dict[str, Any]:
    """Utilisation samples taken inside any of ``windows`` (``(t0, t1)``, wall clock): their number, mean and max
    utilisation in percent and max memory in MiB (None where no sample fell inside)."""
    inside = [s for s in samples if any(t0 <= s.t <= t1 for t0, t1 in windows)]
    if not inside:
        return {"samples": 0, "util_mean": None, "util_max": None, "memory_max_mib": None}
    return {
        "samples": len(inside),
        "util_mean": round(statistics.fmean(s.util for s in inside), 1),
        "util_max": max(s.util for s in inside),
        "memory_max_mib": max((s.memory_mib for s in inside if not math.isnan(s.memory_mib)), default=None),
    }


class GpuSampler:
    """Samples the GPU's utilisation in the background: NVML (``torch.cuda.utilization``, which maps the device to
    its NVML index through CUDA_VISIBLE_DEVICES) in a thread, else ``nvidia-smi -lms`` in a process."""

    def __init__(self, device: torch.device, interval_s: float) -> None:
        self.device, self.interval_s = device, interval_s
        self.samples: list[Sample] = []
        self.source: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen | None = None

    def start(self) -> str:
        """Start sampling; returns where the readings come from, or why there are none."""
        if self.device.type != "cuda":
            return "n/a (no CUDA device)"
        try:
            import pynvml  # noqa: F401  (torch.cuda.utilization reads NVML through it)

            self._read_nvml()  # raises here if NVML does not answer
            self._thread = threading.Thread(target=self._nvml_loop, daemon=True)
            self.source = "NVML (pynvml, through torch.cuda.utilization)"
        except Exception as exc:  # noqa: BLE001  (no pynvml, or NVML refuses: fall back to nvidia-smi)
            smi = shutil.which("nvidia-smi")
            if smi is None:
                return f"n/a (NVML failed: {type(exc).__name__}; no nvidia-smi)"
            uuid = getattr(torch.cuda.get_device_properties(self.device), "uuid", None)  # CUDA_VISIBLE_DEVICES-proof
            which = f"GPU-{uuid}" if uuid is not None else str(self.device.index or 0)
            query = "--query-gpu=timestamp,utilization.gpu,memory.used"
            ms = str(max(1, round(1000 * self.interval_s)))
            args = [smi, "-i", which, query, "--format=csv,noheader,nounits", "-lms", ms]
            self._process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._smi_loop, daemon=True)
            self.source = f"nvidia-smi (NVML through pynvml failed: {type(exc).__name__})"
        self._thread.start()
        return f"{self.source}, every {round(1000 * self.interval_s)} ms"

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
        if self._thread is not None:
            self._thread.join(timeout=10)
        return list(self.samples)

    def _read_nvml(self) -> Sample:
        used = getattr(torch.cuda, "device_memory_used", None)
        memory = used(self.device) / 2**20 if used is not None else float("nan")
        return Sample(time.time(), float(torch.cuda.utilization(self.device)), float(memory))

    def _nvml_loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self._read_nvml())
            self._stop.wait(self.interval_s)

    def _smi_loop(self) -> None:
        for line in self._process.stdout:
            sample = parse_smi_line(line)
            if sample is not None:
                self.samples.append(sample)


class Windows:
    """Wall-clock windows of named parts, ``(group, label, t0, t1)``, each also a torch.profiler range."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, float, float]] = []

    @contextlib.contextmanager
    def __call__(self, group: str, label: str) -> Iterator[None]:
        t0 = time.time()
        try:
            with torch.profiler.record_function(f"robint:{group}:{label}"):
                yield
        finally:
            self.items.append((group, label, t0, time.time()))

    def of(self, group: str) -> dict[str, list[tuple[float, float]]]:
        """The windows of ``group`` by label, in the order first seen."""
        out: dict[str, list[tuple[float, float]]] = {}
        for g, label, t0, t1 in self.items:
            if g == group:
                out.setdefault(label, []).append((t0, t1))
        return out


class Instruments:
    """Wrappers installed on the pipeline's stage timer and the suite's steps for one evaluation, removed after."""

    def __init__(self, windows: Windows, on_stage: Callable[[str, bool], None]) -> None:
        self.windows, self.on_stage = windows, on_stage
        self.notes: list[str] = []
        self._restore: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> Instruments:
        self._stage_timer()
        self._wrap("metrics.suite", "_grid_inputs", "explain", lambda *a, **k: "composites (GridPG inputs)")
        self._wrap("metrics.suite", "_batched", "explain", lambda fn, *a, **k: f"attributions: {_method(fn)}")
        self._wrap("metrics.suite", "_score", "explain", lambda name, *a, **k: f"score: {name}")
        self._wrap("harness.pipeline.explain", "metric_record", "explain", lambda *a, **k: "summaries (bootstrap)")
        return self

    def __exit__(self, *exc) -> None:
        for owner, attr, original in reversed(self._restore):
            setattr(owner, attr, original)

    def _stage_timer(self) -> None:
        try:
            from harness.pipeline.lifecycle import StageTimer

            original = StageTimer.__call__
        except (ImportError, AttributeError):
            self.notes.append("harness.pipeline.lifecycle.StageTimer not found: no stage windows")
            return
        windows, on_stage = self.windows, self.on_stage

        @contextlib.contextmanager
        def timed(timer, stage: str) -> Iterator[None]:
            on_stage(stage, True)
            try:
                with windows("stage", stage), original(timer, stage):
                    yield
            finally:
                on_stage(stage, False)

        StageTimer.__call__ = timed
        self._restore.append((StageTimer, "__call__", original))

    def _wrap(self, module_name: str, attr: str, group: str, label: Callable[..., str]) -> None:
        module = importlib.import_module(module_name)
        original = getattr(module, attr, None)
        if original is None:
            self.notes.append(f"{module_name}.{attr} not found: not instrumented")
            return
        windows = self.windows

        @functools.wraps(original)
        def wrapper(*args, **kwargs):
            with windows(group, label(*args, **kwargs)):
                return original(*args, **kwargs)

        setattr(module, attr, wrapper)
        self._restore.append((module, attr, original))


def _method(explain_fn: Any) -> str:
    return str(getattr(explain_fn, "keywords", {}).get("method", "?"))


class ExplainProfiler:
    """torch.profiler over the explain stage only (started and stopped by the stage timer's wrapper)."""

    def __init__(self, device: torch.device, enabled: bool) -> None:
        self.enabled, self.profile = enabled, None
        self.activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            self.activities.append(torch.profiler.ProfilerActivity.CUDA)

    def on_stage(self, stage: str, entering: bool) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {'start' if entering else 'end'} {stage}", flush=True)
        if not self.enabled or stage != "explain":
            return
        if entering:
            self.profile = torch.profiler.profile(activities=self.activities, record_shapes=False, with_stack=False)
            self.profile.start()
        elif self.profile is not None:
            self.profile.stop()

    def summary(self, stage_seconds: float, top: int) -> dict[str, Any] | None:
        """Top operators by self CPU time, and the operators' CPU and the kernels' GPU seconds in the stage."""
        if self.profile is None:
            return None
        ops = [e for e in self.profile.key_averages() if not e.key.startswith("robint:")]
        device_s = sum(_device_us(e) for e in ops) / 1e6
        cpu_s = sum(e.self_cpu_time_total for e in ops) / 1e6
        ranked = sorted(ops, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
        rows = [
            {
                "op": e.key,
                "calls": e.count,
                "self_cpu_s": round(e.self_cpu_time_total / 1e6, 4),
                "cpu_total_s": round(e.cpu_time_total / 1e6, 4),
                "device_s": round(getattr(e, "device_time_total", 0.0) / 1e6, 4),
            }
            for e in ranked
        ]
        return {
            "stage_seconds": stage_seconds,
            "ops_self_cpu_s": round(cpu_s, 3),
            "gpu_kernels_s": round(device_s, 3),
            "top_ops": rows,
        }


def _device_us(event: Any) -> float:
    return float(getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0)) or 0.0)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _row(label: str, seconds: float, stats: dict[str, Any], extra: str = "") -> str:
    util = f"{_pct(stats['util_mean'])} mean, {_pct(stats['util_max'])} max ({stats['samples']} samples)"
    if stats["samples"] == 0:
        util = "n/a (no sample)"
    return f"  {label:<44} {seconds:9.2f} s{extra}   GPU {util}"


def report_stages(result: dict[str, Any]) -> None:
    """Print the stage table and the explain stage's parts."""
    gpu = result["gpu_sampling"]
    print(f"stages (stored seconds; wall-clock window; GPU utilisation: {gpu}):")
    for stage, row in result["stages"].items():
        window = f" (window {row['window_s']:.2f} s)" if row["window_s"] is not None else ""
        print(_row(stage, row["stored_s"] or 0.0, row, window))
    if result["explain_parts"]:
        print("explain stage, by part (seconds over all calls):")
        for label, row in result["explain_parts"].items():
            print(_row(f"{label} [{row['calls']}x]", row["seconds"], row))
        print(f"  {'rest (messages, validation, storage)':<44} {result['explain_rest_s']:9.2f} s")
    for note in result["notes"]:
        print(f"note: {note}", flush=True)


def report_profiler(prof: dict[str, Any] | None, top: int) -> None:
    """Print the torch.profiler summary of the explain stage."""
    if prof is not None:
        stage = prof["stage_seconds"] or float("nan")
        print(
            f"torch.profiler, explain stage ({stage:.2f} s with the profiler's overhead): torch operators' self CPU "
            f"{prof['ops_self_cpu_s']:.2f} s ({100 * prof['ops_self_cpu_s'] / stage:.0f}%), GPU kernels "
            f"{prof['gpu_kernels_s']:.2f} s ({100 * prof['gpu_kernels_s'] / stage:.0f}%)"
        )
        print(
            f"  top {top} operators by self CPU time: {'calls':>8} {'self CPU s':>11} {'CPU total s':>12} {'GPU s':>8}"
        )
        for row in prof["top_ops"]:
            print(
                f"  {row['op'][:48]:<48} {row['calls']:>8} {row['self_cpu_s']:>11.3f} {row['cpu_total_s']:>12.3f} "
                f"{row['device_s']:>8.3f}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "submissions" / "fmnist_standard.py")
    parser.add_argument("--n-examples", type=int, default=1000)
    parser.add_argument("--attack", default="standard")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--metrics", default="default", help="as `run --metrics` [default: default]")
    parser.add_argument("--methods", default="default", help="as `run --methods` [default: default]")
    parser.add_argument("--n-explain", type=int, default=100)
    parser.add_argument("--n-sanity", type=int, default=16)
    parser.add_argument("--n-composites", type=int, default=16)
    parser.add_argument("--featurevis", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--torch-profile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--top", type=int, default=25, help="operators listed [default: 25]")
    parser.add_argument("--interval-ms", type=int, default=200, help="GPU sampling interval [default: 200]")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    from harness.core.device import resolve_device
    from harness.worker.submission import load_submission

    device = resolve_device(args.device)
    sub = load_submission(args.model)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    settings = (
        f"n={args.n_examples}, attack {args.attack}, metrics {args.metrics}, methods {args.methods}, "
        f"n_explain {args.n_explain}, featurevis {args.featurevis}, torch.profiler on explain: {args.torch_profile}"
    )
    print(
        f"# profile: {sub.metadata['name']} on {device} ({name}), {settings}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads",
        flush=True,
    )
    windows, profiler = Windows(), ExplainProfiler(device, args.torch_profile)
    sampler = GpuSampler(device, args.interval_ms / 1000)
    sampling = sampler.start()
    try:
        with Instruments(windows, profiler.on_stage) as instruments:
            result, timings = evaluate(sub, device, args)
    finally:
        samples = sampler.stop()
    print(f"run {result.run_id}: clean {100 * result.clean_acc:.1f}%, robust {100 * result.robust_acc:.1f}%")
    out = {
        "model": sub.metadata["name"],
        "device": name,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "torch": torch.__version__,
        "run_id": result.run_id,
        "clean_acc": result.clean_acc,
        "robust_acc": result.robust_acc,
        "gpu_sampling": sampling,
        "samples": len(samples),
        **summarise(timings, windows, samples),
        "profiler": None,
        "notes": instruments.notes,
    }
    report_stages(out)  # first, and saved: the profiler's summary of a long stage takes a while
    save_json(args.json, out, samples)
    out["profiler"] = profiler.summary(timings.get("explain"), args.top)
    report_profiler(out["profiler"], args.top)
    save_json(args.json, out, samples)
    explain_s, util = timings.get("explain"), out["stages"].get("explain", {}).get("util_mean")
    na = "n/a"
    print(f"explain_seconds: {na if explain_s is None else explain_s} gpu_util_explain: {na if util is None else util}")


def save_json(path: Path | None, out: dict[str, Any], samples: list[Sample]) -> None:
    if path is not None:
        path.write_text(json.dumps({**out, "gpu_samples": [asdict(s) for s in samples]}, indent=1))


def evaluate(sub: Any, device: torch.device, args: argparse.Namespace) -> tuple[Any, dict[str, float]]:
    """One fresh evaluation of the loaded submission through ``harness.evaluate`` in a temporary SQLite database:
    its :class:`harness.Result` and the stage timings it stored."""
    import harness
    from harness import store

    facts = {k: v for k, v in sub.metadata.items() if k not in ("name", "dataset", "weights")}
    with tempfile.TemporaryDirectory(prefix="robint-profile-") as tmp:
        db = f"sqlite:///{tmp}/profile.db"
        result = harness.evaluate(
            sub.model,
            sub.metadata["dataset"],
            name=str(sub.metadata["name"]),
            metadata=facts,
            n_examples=args.n_examples,
            attack=args.attack,
            device=str(device),
            db=db,
            data_dir=args.data_dir,
            metrics=args.metrics,
            methods=args.methods,
            n_explain=args.n_explain,
            n_sanity=args.n_sanity,
            n_composites=args.n_composites,
            featurevis=args.featurevis,
            fresh=True,
            progress=False,
        )
        with store.transaction(store.open_database(db, create=False)) as s:
            timings = dict(store.get_run(s, result.run_id).timings or {})
    return result, timings


def summarise(timings: dict[str, float], windows: Windows, samples: list[Sample]) -> dict[str, Any]:
    """Each stage's stored seconds, window and GPU utilisation; each explain part's seconds, calls and utilisation;
    what of the explain stage no part accounts for."""
    stage_windows = windows.of("stage")
    stages = {}
    for stage in dict.fromkeys([*STAGES, *timings, *stage_windows]):
        if stage in timings or stage in stage_windows:
            spans = stage_windows.get(stage, [])
            window = sum(t1 - t0 for t0, t1 in spans) if spans else None
            stages[stage] = {"stored_s": timings.get(stage), "window_s": window, **window_stats(samples, spans)}
    parts = {}
    for label, spans in windows.of("explain").items():
        seconds = sum(t1 - t0 for t0, t1 in spans)
        parts[label] = {"seconds": round(seconds, 3), "calls": len(spans), **window_stats(samples, spans)}
    rest = (timings.get("explain") or 0.0) - sum(p["seconds"] for p in parts.values())
    return {"stages": stages, "explain_parts": parts, "explain_rest_s": round(rest, 3)}


if __name__ == "__main__":
    main()
