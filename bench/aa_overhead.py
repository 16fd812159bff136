"""Overhead of `robint-bench run` over a raw pyautoattack call on the same model, data and seed.

    python bench/aa_overhead.py [--model submissions/fmnist_pgd_linf.py] [--n 100] [--attack standard]

Times (a) raw ``pyautoattack.AutoAttack(...).run_standard_evaluation`` and (b) the harness's whole
``evaluate()`` (submission loading, data, contract check, attack, verification, re-evaluation, SQLite writes)
in one process, alternating the order over ``--repeats``, and compares robust accuracies.
Last line, read by scripts: ``ratio: R identical: yes|no`` (R = harness seconds / raw seconds, best of repeats).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pyautoattack import AutoAttack

from harness.attack.registry import CUSTOM, parse_attack
from harness.core.device import resolve_device, seed_everything
from harness.data import load_examples
from harness.pipeline.evaluate import RunConfig, evaluate
from harness.worker.submission import load_submission


def raw_autoattack(model_path: Path, n: int, attack: str, seed: int, batch_size: int, device) -> tuple[float, float]:
    """Seconds and robust accuracy of a plain pyautoattack evaluation."""
    start = time.perf_counter()
    sub = load_submission(model_path)
    model = sub.model.to(device)
    x, y = load_examples(sub.metadata["dataset"], n=n)
    seed_everything(seed)
    parsed = parse_attack(attack)
    version, attacks = parsed.version, list(parsed.attacks) if parsed.version == CUSTOM else None
    adversary = AutoAttack(
        model,
        attacks=attacks,
        device=device,
        eps=float(sub.metadata.get("eps", 0.1)),
        norm=sub.metadata.get("threat_model", "Linf"),
        seed=seed,
        version=version,
    )
    _, y_adv = adversary.run_standard_evaluation(x, y, batch_size=batch_size)
    robust = (y_adv.cpu() == y).float().mean().item()
    return time.perf_counter() - start, robust


def harness_run(model_path: Path, n: int, attack: str, seed: int, batch_size: int, device) -> tuple[float, float]:
    """Seconds and robust accuracy of the harness's full run (fresh database each time)."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = evaluate(
            RunConfig(
                model=model_path,
                n_examples=n,
                attack=attack,
                seed=seed,
                batch_size=batch_size,
                device=str(device),
                db=f"sqlite:///{tmp}/bench.db",
                progress=False,
                metrics="none",
                featurevis=False,
            )
        )  # robustness only: the AA overhead
        return time.perf_counter() - start, summary.robust_acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("submissions/fmnist_pgd_linf.py"))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--attack", default="standard")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    common = (args.model, args.n, args.attack, args.seed, args.batch_size, device)
    raw_times, ours_times, accs = [], [], set()
    for i in range(args.repeats):
        order = (raw_autoattack, harness_run) if i % 2 == 0 else (harness_run, raw_autoattack)
        for fn in order:
            seconds, acc = fn(*common)
            (raw_times if fn is raw_autoattack else ours_times).append(seconds)
            accs.add((fn.__name__, round(acc * args.n)))  # robust images: float32 means differ in the 8th digit
            print(f"{fn.__name__:<15} {seconds:8.2f} s  robust accuracy {acc:.4f}", flush=True)
    raw_accs = {a for name, a in accs if name == "raw_autoattack"}
    ours_accs = {a for name, a in accs if name == "harness_run"}
    identical = raw_accs == ours_accs and len(raw_accs) == 1
    print(
        f"device {device}, n {args.n}, attack {args.attack}, best raw {min(raw_times):.2f} s, "
        f"best harness {min(ours_times):.2f} s"
    )
    print(f"ratio: {min(ours_times) / min(raw_times):.2f} identical: {'yes' if identical else 'no'}")


if __name__ == "__main__":
    main()
