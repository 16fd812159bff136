"""The worker's thread setting against every fixed thread count, with and without a competing load.

    python bench/threads.py [--model submissions/fmnist_standard.py] [--n 20] [--attack apgd-ce] [--repeats 3]
        [--load N] [--phases load,idle]

Each measurement is a fresh process that runs the worker's attack code (``harness.attack.registry``: the attack
``--attack`` on the first ``--n`` test images of the model, seeded) and reports the attack's seconds, started with
one of these environments:

- ``k threads``, k = 1 .. the cores available: ``OMP_NUM_THREADS=k`` with OpenMP's default waiting (threads spin
  at barriers before they sleep): what torch does with that many threads;
- ``robint-bench``: the environment the harness starts its workers with (``harness.core.threads.thread_env``: the cores
  available, from the affinity mask and the cgroup quota, and passive waiting).

A competing load is ``--load`` busy processes (default: one per core available), started before and stopped after
each phase. Settings alternate within each repeat, and each setting's median is reported, because the machine may
be shared. Last line, read by scripts: ``ratio: R`` = the robint-bench setting's median under the load divided by the
best setting's median under the load (target: at most 1.2).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY")


def child(model: str, n: int, attack: str) -> None:
    """Run the attack once in this process and print ``{"seconds": S, "threads": T, "robust": R}``."""
    import torch

    from harness.attack.registry import parse_attack
    from harness.data import load_examples
    from harness.worker.submission import load_submission

    sub = load_submission(Path(model))
    x, y = load_examples(sub.metadata["dataset"], n=n)
    start = time.perf_counter()
    outcome = parse_attack(attack).run(
        sub.model.eval(),
        x,
        y,
        threat_model=str(sub.metadata.get("threat_model", "Linf")),
        eps=float(sub.metadata.get("eps", 0.1)),
        seed=0,
        batch_size=n,
        device=torch.device("cpu"),
        progress=False,
    )
    seconds = time.perf_counter() - start
    robust = float((outcome.adv_pred == y).float().mean())
    print(json.dumps({"seconds": seconds, "threads": torch.get_num_threads(), "robust": robust}))


def settings(cores: int) -> dict[str, dict[str, str]]:
    """Name -> the thread variables a measurement process is started with."""
    from harness.core.threads import plan, thread_env

    clean = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    out = {}
    for k in range(1, cores + 1):
        out[f"{k} thread{'s' if k > 1 else ''}"] = dict.fromkeys(THREAD_VARIABLES[:3], str(k))
    out["robint-bench"] = thread_env(plan(clean), clean)
    return out


def measure(env_vars: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(env_vars)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--model", args.model, "--n", str(args.n), "--attack", args.attack],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _spin() -> None:
    while True:
        pass


def phase(name: str, load: int, table: dict[str, dict[str, str]], args: argparse.Namespace) -> dict[str, float]:
    """Median seconds per setting with ``load`` busy processes running."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(load)]
    for p in spinners:
        p.start()
    times: dict[str, list[float]] = {k: [] for k in table}
    try:
        for repeat in range(args.repeats):
            order = list(table) if repeat % 2 == 0 else list(reversed(table))
            for setting in order:
                result = measure(table[setting], args)
                times[setting].append(result["seconds"])
                print(
                    f"{name:<5} {setting:<13} {result['seconds']:7.2f} s  (torch threads {result['threads']}, "
                    f"robust {result['robust']:.3f})",
                    flush=True,
                )
    finally:
        for p in spinners:
            p.terminate()
        for p in spinners:
            p.join()
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "submissions" / "fmnist_standard.py"))
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--attack", default="apgd-ce")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", type=int, default=None, help="Busy processes [default: one per core available].")
    parser.add_argument("--phases", default="load,idle", help="load, idle or both (the ratio needs load).")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.model, args.n, args.attack)
        return
    sys.path.insert(0, str(ROOT))
    from harness.core.threads import cores

    available = cores()
    load = available.available if args.load is None else args.load
    table = settings(available.available)
    print(f"# {available.describe()}; {args.attack} on the first {args.n} test images of {Path(args.model).name}")
    print("# settings: " + "; ".join(f"{k}: {' '.join(f'{a}={b}' for a, b in v.items())}" for k, v in table.items()))
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    medians = {}
    for name in phases:
        medians[name] = phase(name, load if name == "load" else 0, table, args)
    for name, result in medians.items():
        best = min(result.values())
        where = f"{load} busy processes" if name == "load" else "no added load"
        print(f"# {name} ({where}): " + ", ".join(f"{k} {v:.2f} s ({v / best:.2f}x)" for k, v in result.items()))
    if "load" not in medians:
        print("ratio: n/a (no load phase)")
        return
    under = medians["load"]
    print(f"ratio: {under['robint-bench'] / min(under.values()):.2f}")


if __name__ == "__main__":
    main()
