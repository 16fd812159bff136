"""``results``, ``runs`` and ``leaderboard``: what the database holds."""

from __future__ import annotations

import json
from pathlib import Path

import click

from harness.cli.options import DB_OPTION

EMPTY_HINT = (
    "evaluate a model with `robint-bench run --model submissions/<file>.py`, or load the archived evaluations "
    "with `robint-bench import results/archive`"
)


@click.command()
@DB_OPTION
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Markdown file to write [default: leaderboard.md, unless only --html is given].",
)
@click.option(
    "--html",
    "html_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also (or only) write a static HTML site into this directory: one page per data set and threat model with "
    "search, filters and sortable, paged tables, interactive scatter plots, and a page per run with its numbers, "
    "settings, versions and figures; it needs no server and no network.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def leaderboard(db: str, out: Path | None, html_dir: Path | None, quiet: bool) -> None:
    """Regenerate leaderboard.md (and, with --html, a static HTML leaderboard) from the database.

    A completed run whose stored numbers are not those of its per-example rows is left off, with a warning line."""
    from harness import store
    from harness.report.entries import left_off
    from harness.report.escape import terminal
    from harness.report.leaderboard import write_leaderboard

    with store.transaction(store.open_database(db, create=False)) as s:
        for run_id, model, reason in left_off(s):
            click.echo(
                f"warning: run {terminal(run_id, 40)} of {terminal(model, 80)} is left off the board: "
                f"{terminal(reason, 400)} -- re-import it from a verified archive, or run the model again",
                err=True,
            )
    if out is None and html_dir is None:
        out = Path("leaderboard.md")
    if out is not None:
        click.echo(f"wrote {write_leaderboard(db, out)}")
    if html_dir is not None:
        from harness.report.html import write_html_leaderboard

        site = write_html_leaderboard(db, html_dir, progress=not quiet)
        for warning in site.warnings:
            click.echo(f"warning: {warning}", err=True)
        click.echo(f"wrote {site.index}")


@click.command()
@DB_OPTION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON (a list of runs and reported entries).")
def results(db: str, as_json: bool) -> None:
    """List completed runs (and entries imported with import-robustbench, marked "reported")."""
    from harness import store
    from harness.report.escape import terminal
    from harness.report.results import reported_record, result_record
    from harness.store.robustbench import reported_entries

    with store.transaction(store.open_database(db, create=False)) as s:
        records = [result_record(run) for run in store.completed_runs(s)]
        records += [reported_record(rep) for rep in reported_entries(s)]
    if as_json:
        click.echo(json.dumps(_finite(records), indent=2, default=str))
        return
    if not records:
        click.echo(f"no completed runs in {db} yet: {EMPTY_HINT}")
        return
    for r in records:
        if r["kind"] == "reported":
            robust = "  —  " if r["robust_acc"] is None else f"{100 * r['robust_acc']:5.2f}"
            click.echo(
                f"reported      {r['model']:<28} {r['dataset']} {r['threat_model']} {r['eps_text']:<6} "
                f"       clean {100 * r['clean_acc']:5.2f}%  robust {robust}%  (imported, not measured here)"
            )
            continue
        click.echo(
            f"{r['run_id']}  {terminal(r['model'], 80):<28} {r['dataset']} {r['threat_model']} {r['eps_text']:<6} "
            f"n={r['n_examples']!s:<5} clean {_percent(r['clean_acc'])}%  robust {_percent(r['robust_acc'])}%"
            + ("  (imported)" if r["kind"] == "imported" else "")
        )


def _percent(value) -> str:
    """A stored accuracy as a percentage, or ``  ?  `` when the row holds something else."""
    import math

    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return f"{100 * value:5.1f}" if ok else "  ?  "


def _finite(value):
    """``value`` with non-finite floats as None (strict JSON: a damaged row cannot make the output unreadable)."""
    import math

    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


@click.command()
@DB_OPTION
@click.option("--prune", is_flag=True, help="Delete interrupted and failed runs (their partial results too).")
@click.option(
    "--sweep", "sweep_id", default=None, help="Only this sweep's runs, and its progress (`robint-bench sweep`)."
)
def runs(db: str, prune: bool, sweep_id: str | None) -> None:
    """List every run with its status: running, complete, failed or interrupted."""
    from harness import store

    if sweep_id is not None:
        from harness.pipeline.sweep import print_progress

        print_progress(db, sweep_id, click.echo)
        return
    with store.transaction(store.open_database(db, create=False)) as s:
        listing = store.runs_with_status(s, prune=prune)
        if not listing:
            click.echo(f"no runs in {db} yet: {EMPTY_HINT}")
        for run, status, pruned in listing:
            click.echo(
                f"{run.id}  {status:<11} {run.model.name:<28} {run.dataset} {run.threat_model} {run.eps_text:<6} "
                f"n={run.n_examples:<5} examples {len(run.examples)}/{run.n_examples}, scores {len(run.metrics)}  "
                f"{run.created_at:%Y-%m-%d %H:%M}" + ("  (pruned)" if pruned else "")
            )


COMMANDS = (
    leaderboard,
    results,
    runs,
)  # registered on the command group by harness/cli/app.py
