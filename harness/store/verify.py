"""Whether a stored run's numbers are those of its per-example rows: what an imported run must pass to be stored
(harness.pipeline.imports), a completed run to be reused (harness.pipeline.lifecycle) and a board row to be ranked
(harness.report.entries).

A run measured here always passes; a number typed into an archive file, or a row written by hand, does not unless
its rows say the same: every example ``0..n-1`` once, ``clean_correct`` exactly ``clean_pred == label``,
``robust_correct`` exactly ``clean_correct and adv_pred == label``, perturbations finite, non-negative and inside
the eps-ball, and the accuracies the means of those rows.
"""

from __future__ import annotations

import math
from typing import Any

from harness.store.schema import RunRecord

_ACC_TOLERANCE = 1e-9
_EPS_SLACK = 1e-6  # adversarial examples are verified to lie within eps + 1e-6 (harness.attack.verify)


def run_problems(run: RunRecord) -> list[str]:
    """Why ``run``'s stored numbers are not those of its rows (empty when they are), each a short phrase."""
    return rows_problems(
        n=run.n_examples,
        eps=run.eps,
        clean_acc=run.clean_acc,
        robust_acc=run.robust_acc,
        rows=[
            (e.idx, e.label, e.clean_pred, e.adv_pred, e.clean_correct, e.robust_correct, e.perturbation)
            for e in run.examples
        ],
    )


def rows_problems(*, n: Any, eps: Any, clean_acc: Any, robust_acc: Any, rows: list[tuple]) -> list[str]:
    """:func:`run_problems` for plain values: ``rows`` of (idx, label, clean_pred, adv_pred, clean_correct,
    robust_correct, perturbation).

    >>> rows_problems(n=2, eps=0.1, clean_acc=1.0, robust_acc=0.95, rows=[(0, 1, 1, 2, True, False, 0.1),
    ...     (1, 3, 3, 0, True, False, 0.1)])
    ["robust accuracy 0.95 is not its rows' 0 of 2 (0)"]
    """
    if not _int(n) or n < 1:
        return [f"n_examples {n!r} is not a positive integer"]
    if not _number(eps) or eps <= 0:
        return [f"eps {eps!r} is not a positive number"]
    problems = []
    if len(rows) != n or sorted(r[0] for r in rows if _int(r[0])) != list(range(n)):
        problems.append(f"its {len(rows)} example rows are not the examples 0..{n - 1}, each once")
    for row in rows:
        idx, label, clean_pred, adv_pred, clean_ok, robust_ok, norm = row
        if not all(_int(v) for v in (idx, label, clean_pred, adv_pred)) or not all(
            isinstance(v, bool) for v in (clean_ok, robust_ok)
        ):
            problems.append(f"example row {idx!r} has values of the wrong types")
            break
        if clean_ok != (clean_pred == label) or robust_ok != (clean_ok and adv_pred == label):
            problems.append(f"example {idx}: its correctness flags contradict its predictions and label")
            break
        if not _number(norm) or not 0 <= norm <= eps * (1 + _EPS_SLACK) + _EPS_SLACK:
            problems.append(f"example {idx}: perturbation {norm!r} is not inside the eps-ball")
            break
    if problems:
        return problems
    for what, stored, index in (("clean", clean_acc, 4), ("robust", robust_acc, 5)):
        count = sum(bool(r[index]) for r in rows)
        if not _number(stored) or abs(stored - count / n) > _ACC_TOLERANCE:
            problems.append(f"{what} accuracy {stored!r} is not its rows' {count} of {n} ({count / n:.4g})")
    return problems


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
