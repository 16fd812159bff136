"""``check``: the regression gate (re-run a fast configuration on the reference models, compare with the baseline)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command()
@click.option("--baseline", type=click.Path(path_type=Path), default=Path("results/baseline.json"), show_default=True)
@click.option("--z", default=3.0, show_default=True, type=float, help="Tolerance in standard errors of n.")
@click.option("--update", is_flag=True, help="Rewrite the baseline with the numbers measured now.")
@click.option(
    "--submissions",
    type=click.Path(path_type=Path),
    default=Path("submissions"),
    show_default=True,
    help="Directory holding the reference models.",
)
@click.option("--only", multiple=True, help="Check only this reference model (repeatable).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--quiet", is_flag=True)
def check(
    baseline: Path, z: float, update: bool, submissions: Path, only: tuple[str, ...], data_dir: Path | None, quiet: bool
) -> None:
    """Regression gate: re-run a fixed fast configuration on the reference models and compare with the baseline."""
    from harness.pipeline.gate import REFERENCE_MODELS, measure
    from harness.report.gate import check_against, format_table, update_baseline

    now = measure(submissions, tuple(only or REFERENCE_MODELS), data_dir=data_dir, progress=not quiet)
    if update:
        update_baseline(baseline, now, merge=bool(only))
        click.echo(f"wrote {baseline} ({len(now['models'])} model(s))")
        return
    rows = check_against(baseline, now, z=z)
    click.echo(format_table(rows))
    failures = sum(r.failed for r in rows)
    click.echo(f"gate: {'FAIL' if failures else 'PASS'} ({failures} regression(s) in {len(rows)} numbers)")
    if failures:
        sys.exit(1)


COMMANDS = (check,)  # registered on the command group by harness/cli/app.py
