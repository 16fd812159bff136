"""CPU and wall time of the default explain stage, broken down by what each message computes, for the code on
``PYTHONPATH``: run it once with another checkout first on the path to compare two versions of the suite.

    python bench/explain_cost.py [--model submissions/fmnist_standard.py] [--n-explain 100] [--threads 1]

The default suite (``SuiteConfig(n_explain=...)``) runs on the model's first test images with 200 seeded training
images as background, as a run's worker does. Times are per yielded item (attributions or one score): CPU seconds
of this process (``time.process_time``, all threads; on a busy machine the fairer measure, wall time grows with
the load) and wall seconds, summed per group: the attributions, the methods' scores, the controls' scores
(attributions included) and the bounds. With one thread (the default) CPU time is the work done.
Last line, read by scripts: ``total: cpu C wall W`` (seconds).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import torch

from harness.data import load_examples
from harness.worker.submission import load_submission
from metrics.attribution import METHODS
from metrics.suite import MetricScore, SuiteConfig, iter_suite


def group(method: str, is_score: bool) -> str:
    if method in METHODS and METHODS.get(method).control:
        return "controls"
    if method in METHODS:
        return "method scores" if is_score else "attributions"
    return "bounds" if method.startswith("bound_") else method  # the floor and ceiling rows; reliability


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("submissions/fmnist_standard.py"))
    parser.add_argument("--n-explain", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_submission(args.model).model.eval()
    x, y = load_examples("fashion-mnist", n=max(args.n_explain, 200))
    x_train, _ = load_examples("fashion-mnist", split="train")
    background = x_train[torch.randperm(len(x_train), generator=torch.Generator().manual_seed(0))[:200]]
    with torch.no_grad():
        pred = model(x).argmax(1)
    cpu, wall = defaultdict(float), defaultdict(float)
    start_cpu, start_wall = time.process_time(), time.perf_counter()
    last_cpu, last_wall = start_cpu, start_wall
    for item in iter_suite(
        model,
        x,
        y,
        pred,
        config=SuiteConfig(n_explain=args.n_explain),
        num_classes=10,
        has_object_masks=True,
        background=background,
        device=torch.device("cpu"),
        progress=False,
    ):
        now_cpu, now_wall = time.process_time(), time.perf_counter()
        is_score = isinstance(item, MetricScore)
        name = f"{item.method} x {item.metric}" if is_score else f"{item.method} attributions"
        mean = sum(item.values) / len(item.values) if is_score and item.values else float("nan")
        print(f"{name:58s} cpu {now_cpu - last_cpu:8.1f} s  wall {now_wall - last_wall:8.1f} s  mean {mean:.4f}")
        key = group(item.method, is_score)
        cpu[key] += now_cpu - last_cpu
        wall[key] += now_wall - last_wall
        last_cpu, last_wall = now_cpu, now_wall
    for key in cpu:
        print(f"{key}: cpu {cpu[key]:.1f} s wall {wall[key]:.1f} s")
    print(f"total: cpu {time.process_time() - start_cpu:.1f} wall {time.perf_counter() - start_wall:.1f}")


if __name__ == "__main__":
    main()
