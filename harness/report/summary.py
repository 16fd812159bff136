"""The short result summary ``robint-bench run`` prints at the end, read from the database: the accuracies with
their intervals, AutoAttack's own log over the run, the headline scores with intervals (marked † when they do not
beat their bar, n/a with the reason; a curve metric normalised between the model's floor and ceiling when they
are stored), the flags, each stage's time next to its estimate, and where the
figures are. ``verbose`` adds every stored score (the old full listing)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness import store
from harness.report.controls import bar_checks, beats_bar_on, noop_checks
from harness.report.entries import Entry, _explained_output
from harness.report.scores import Score, stored_score
from harness.report.values import own_normalised
from harness.report.wording import autoattack_log, duration, span
from harness.store.files import run_files_dir
from metrics.registry import HEADLINE, METRICS
from metrics.stats import wilson_interval

__all__ = ["run_summary"]


def run_summary(
    db: str,
    run_id: str,
    *,
    verb: str = "stored run",
    verbose: bool = False,
    seconds: Mapping[str, float] | None = None,
) -> list[str]:
    """The summary of run ``run_id`` of ``db`` as lines, the first ``<verb> <run id>: ...`` (``seconds``: this
    call's stage times; default: the stored ones)."""
    with store.transaction(store.open_database(db, create=False)) as s:
        run = store.get_run(s, run_id)
        scores = {}
        for m in run.metrics:
            try:
                scores[(m.method, m.metric)] = stored_score(m)
            except (TypeError, ValueError):
                continue
        lines = _accuracies(run, verb)
        lines += _headline(run, scores)
        lines += _flags(run.flags or [])
        lines += _times(dict(seconds or run.timings or {}), (run.details or {}).get("estimate") or {})
        figures = run_files_dir(db, run.id)
        if figures is not None and figures.is_dir():
            lines.append(f"  figures          {figures} ({len(list(figures.glob('*.png')))} PNG)")
        if verbose:
            lines += _every_score(run.metrics)
        else:
            lines.append("  every score: robint-bench run ... --verbose, or robint-bench results --json")
    return lines


def _accuracies(run: store.RunRecord, verb: str) -> list[str]:
    n = run.n_examples
    clean_lo, clean_hi = wilson_interval(round(run.clean_acc * n), n)
    robust_lo, robust_hi = wilson_interval(round(run.robust_acc * n), n)
    after = (run.details or {}).get("autoattack", {}).get("accuracy_after") or {}
    return [
        f"{verb} {run.id}: {run.model.name}, {run.dataset} {run.threat_model} eps = {run.eps_text}, n = {n}, "
        f"AutoAttack {run.attack}",
        f"  clean accuracy   {100 * run.clean_acc:.1f}% [{100 * clean_lo:.1f}, {100 * clean_hi:.1f}]",
        f"  robust accuracy  {100 * run.robust_acc:.1f}% [{100 * robust_lo:.1f}, {100 * robust_hi:.1f}] "
        "(95% Wilson intervals)",
        f"  AutoAttack       {autoattack_log(after)}",
    ]


def _headline(run: store.RunRecord, scores: dict[tuple[str, str], Score]) -> list[str]:
    pairs = [pair for pair in HEADLINE if pair in scores]
    if not pairs:
        return []
    entry = Entry(
        run_id=run.id,
        model=run.model.name,
        n=run.n_examples,
        attack=run.attack,
        clean_acc=run.clean_acc,
        robust_acc=run.robust_acc,
        training="",
        created_at=run.created_at,
        flags=(),
        scores=scores,
        explained_output=_explained_output(run.details),
    )
    checks = bar_checks([entry]) + noop_checks([entry])
    lines = [
        "  headline scores (mean [95% interval], n; norm.: between the model's own floor 0 and ceiling 1; "
        "† does not beat its bar):"
    ]
    for method, metric in pairs:
        score = scores[(method, metric)]
        spec = METRICS.get(metric)
        name = f"{spec.short} {spec.arrow}"
        normalised = own_normalised(entry, metric) if spec.normalisable else None
        if normalised is not None:
            score, name = normalised, f"{spec.short} norm. ↑"
        if score.mean is None:
            value = f"n/a: {score.na}"
        else:
            interval = "" if score.low is None else f" [{score.low:.3f}, {score.high:.3f}]"
            value = f"{score.mean:.3f}{interval}, n={score.n}"
            if not beats_bar_on(checks, run.model.name, method, metric):
                value += " †"
        lines.append(f"    {name:<25} {value}")
    return lines


def _flags(flags: list[Any]) -> list[str]:
    if not flags:
        return ["  flags            none"]
    return [f"  flag             ⚠ {f.get('code')}: {f.get('message')}" for f in flags if isinstance(f, dict)]


def _times(seconds: dict[str, float], estimate: Mapping[str, Any]) -> list[str]:
    if not seconds:
        return []
    parts = []
    for stage, value in seconds.items():
        guess = estimate.get(stage)
        parts.append(f"{stage} {duration(value)}" + (f" (est. {span(*guess)})" if guess else ""))
    return [f"  time             {duration(sum(seconds.values()))}: {', '.join(parts)}"]


def _every_score(metrics: list[store.MetricRecord]) -> list[str]:
    lines = ["  every score (mean [95% bootstrap interval], n):"]
    for m in sorted(metrics, key=lambda m: (m.method, m.metric)):
        if m.mean is None:
            value = f"n/a: {(m.details or {}).get('not_applicable', 'no values')}"
        else:
            value = f"{m.mean:.4f} [{_fmt(m.ci_low)}, {_fmt(m.ci_high)}], n={m.n}"
            if (m.details or {}).get("trivial"):
                value += " (trivial by construction)"
        lines.append(f"    {m.method:<22} {m.metric:<26} {value}")
    return lines


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
