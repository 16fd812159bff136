"""How much the attack protocol moves robust accuracy: each archived model evaluated under AutoAttack standard and
under another attack (APGD-CE + APGD-T) on the same images, compared example by example.

    python bench/protocol_agreement.py [--archive results/archive] [--baseline apgd-ce,apgd-t]

Runs pair when they share the model (name and the submission's and weights' sha256), data set, threat model, eps,
n and seed; of several runs of one attack the newest is taken. Per pair: clean and robust accuracy under each, and
the examples whose robust outcome differs (``std only``: broken by AutoAttack standard alone, as its extra attacks,
FAB-T and Square, should; ``base only``: broken by the baseline alone, which AutoAttack's own APGD-CE + APGD-T,
run with its standard settings, can do where the baseline's differ). Reads the archive files only (no database).
Prints one line per model, then exactly ``max robust acc diff: D points (K models)`` (D: the largest
|standard - baseline| robust accuracy in percentage points).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.store.archive import archive_files, read_archive


@dataclass(frozen=True)
class Agreement:
    """One model's two runs on the same images: accuracies (fractions) and robust outcomes that differ."""

    model: str
    n: int
    clean: tuple[float, float]  # (standard, baseline)
    robust: tuple[float, float]
    standard_only: int  # robust under the baseline, broken by AutoAttack standard
    baseline_only: int  # robust under AutoAttack standard, broken by the baseline
    clean_differs: int  # examples whose clean prediction differs (the same model and images: 0 expected)


def agreement(standard: dict[str, Any], baseline: dict[str, Any]) -> Agreement:
    """Compare two archive records of one model on the same images, example by example."""
    columns = standard["examples"]["columns"]
    if baseline["examples"]["columns"] != columns:
        raise ValueError("the two records have different example columns")
    idx, robust, clean = (columns.index(c) for c in ("idx", "robust_correct", "clean_pred"))
    a = {r[idx]: r for r in standard["examples"]["rows"]}
    b = {r[idx]: r for r in baseline["examples"]["rows"]}
    if set(a) != set(b):
        raise ValueError("the two records hold different examples")
    n = len(a)
    return Agreement(
        model=standard["model"]["name"],
        n=n,
        clean=(standard["run"]["clean_acc"], baseline["run"]["clean_acc"]),
        robust=(sum(bool(r[robust]) for r in a.values()) / n, sum(bool(r[robust]) for r in b.values()) / n),
        standard_only=sum(1 for i in a if b[i][robust] and not a[i][robust]),
        baseline_only=sum(1 for i in a if a[i][robust] and not b[i][robust]),
        clean_differs=sum(1 for i in a if a[i][clean] != b[i][clean]),
    )


def pairs(records: list[dict[str, Any]], baseline: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(standard, baseline) record pairs of the same model, images and threat; the newest run of each attack."""
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rec in records:
        m, r = rec["model"], rec["run"]
        if r["status"] != "complete" or r["attack"] not in ("standard", baseline):
            continue
        key = (m["name"], m["file_sha256"], m["weights_sha256"], r["dataset"], r["threat_model"], r["eps_text"])
        key += (r["n_examples"], r["seed"], r["attack"])
        if key not in newest or r["finished_at"] > newest[key]["run"]["finished_at"]:
            newest[key] = rec
    out = []
    for key in sorted(k for k in newest if k[-1] == "standard"):
        other = (*key[:-1], baseline)
        if other in newest:
            out.append((newest[key], newest[other]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=Path("results/archive"))
    parser.add_argument("--baseline", default="apgd-ce,apgd-t", help="the other attack, as a run records it")
    args = parser.parse_args()
    records = [json.loads(read_archive(f)[1]) for f in archive_files([args.archive])]
    found = [agreement(s, b) for s, b in pairs(records, args.baseline)]
    head = (
        f"{'model':32s} {'n':>5s} {'clean std/base':>15s} {'robust std/base':>16s} {'std only':>8s} {'base only':>9s}"
    )
    print(f"{head} {'clean differs':>13s}")
    for a in found:
        clean = f"{100 * a.clean[0]:.1f}/{100 * a.clean[1]:.1f}"
        robust = f"{100 * a.robust[0]:.1f}/{100 * a.robust[1]:.1f}"
        line = f"{a.model:32s} {a.n:5d} {clean:>15s} {robust:>16s} {a.standard_only:8d} {a.baseline_only:9d}"
        print(f"{line} {a.clean_differs:13d}")
    worst = max((abs(a.robust[0] - a.robust[1]) for a in found), default=float("nan"))
    print(f"max robust acc diff: {100 * worst:.1f} points ({len(found)} models)")


if __name__ == "__main__":
    main()
