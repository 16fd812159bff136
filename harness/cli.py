"""The ``robint-bench`` command line: builds typed configs from flags and calls the library."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import click

from harness.errors import HarnessError
from harness.storage import DEFAULT_DB

_DB = click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLAlchemy database URL.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one error line.")
@click.version_option(package_name="robint-bench")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """robint-bench: how robust is an image classifier, and how interpretable?"""
    ctx.obj = {"debug": debug}


@cli.command()
@click.option("--model", "model", type=click.Path(path_type=Path), default=None, help="Submission .py file.")
@click.option("--robustbench", default=None, metavar="MODEL_ID", help="A RobustBench zoo model instead of --model.")
@click.option("--model-dir", type=click.Path(path_type=Path), default=None,
              help="RobustBench checkpoints: <dir>/<dataset>/<threat model>/<id>.pt (default ./models).")
@click.option("--dataset", default=None, help="Data set (default: the submission's METADATA).")
@click.option("--n-examples", default=1000, show_default=True, type=int, help="First n test examples.")
@click.option("--threat-model", default=None, help="Linf or L2 (default: METADATA, else the data set's).")
@click.option("--eps", default=None, help="Budget, e.g. 0.1 or 8/255 (default: METADATA, else the data set's).")
@click.option("--attack", default="standard", show_default=True, help="standard, plus, rand, or apgd-ce,apgd-t,...")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--batch-size", default=250, show_default=True, type=int)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@_DB
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Data directory (default ./data).")
@click.option("--fresh", is_flag=True, help="Run again even if an identical completed run exists.")
@click.option("--metrics", default="default", show_default=True,
              help="Interpretability metrics: default, all, none, or a comma list (see `robint-bench list`).")
@click.option("--methods", default="default", show_default=True,
              help="Attribution methods: default, all, or a comma list.")
@click.option("--n-explain", default=100, show_default=True, type=int, help="Test images explained and scored.")
@click.option("--explain-target", type=click.Choice(["label", "predicted"]), default="label", show_default=True,
              help="Class the attributions explain: the true label or the model's prediction.")
@click.option("--method-option", "method_options", multiple=True, metavar="METHOD.KEY=VALUE",
              help="Attribution setting, e.g. integrated_gradients.n_steps=50 (repeatable).")
@click.option("--featurevis/--no-featurevis", default=None,
              help="Representation inversion and class generation, scored with the reference encoder "
                   "[default: on with the default or 'all' metric suite].")
@click.option("--featurevis-option", "featurevis_options", multiple=True, metavar="KEY=VALUE",
              help="Feature-visualisation setting, e.g. inversion_steps=2000 or per_class=50 (repeatable).")
@click.option("--trusted", is_flag=True, help="Run the submission in this process, without the sandbox (debugging).")
@click.option("--stall-timeout", default=600.0, show_default=True, type=float,
              help="Stop a worker that makes no progress (no forward pass) for this many seconds.")
@click.option("--timeout", default=None, type=float, help="Wall-clock limit for the whole evaluation, in seconds.")
@click.option("--memory-limit", default="auto", show_default=True,
              help="Worker memory limit: auto (min of 16G and 75%% of RAM), none, or e.g. 8G.")
@click.option("--cpu-limit", default=None, type=int, help="Worker CPU-time limit in seconds.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run(model: Path | None, quiet: bool, **options) -> None:
    """Evaluate one submission with AutoAttack and interpretability metrics, and store the run."""
    from harness.evaluate import RunConfig, evaluate

    options["method_options"] = tuple(options["method_options"])
    options["featurevis_options"] = tuple(options["featurevis_options"])
    summary = evaluate(RunConfig(model=model, progress=not quiet, **options))
    c = summary.config
    verb = ("reused identical completed run" if summary.reused else "resumed and stored run" if summary.resumed
            else "stored run")  # fmt: skip
    click.echo(f"{verb} {summary.run_id}")
    rows = [
        ("model", summary.model),
        ("data", f"{c.dataset}, first {c.n_examples} test examples"),
        ("threat model", f"{c.threat_model}, eps = {c.eps_text}"),
        ("attack", f"AutoAttack {c.attack}, seed {c.seed}"),
        ("clean accuracy", f"{100 * summary.clean_acc:.2f}%"),
        ("robust accuracy", f"{100 * summary.robust_acc:.2f}%"),
    ]
    if summary.timings:
        rows.append(("seconds", ", ".join(f"{k} {v:.1f}" for k, v in summary.timings.items())))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"  {key:<{width}}  {value}")
    _echo_metrics(options["db"], summary.run_id)
    from harness.evaluate import run_files_dir

    figures = run_files_dir(options["db"], summary.run_id)
    if figures is not None and figures.is_dir():
        click.echo(f"  figures: {figures}")


def _echo_metrics(db: str, run_id: str) -> None:
    from harness.storage import get_run, open_database

    with open_database(db).begin() as s:
        scores = sorted(get_run(s, run_id).metrics, key=lambda m: (m.method, m.metric))
        if not scores:
            return
        click.echo("  interpretability (mean [95% bootstrap interval], n):")
        for m in scores:
            if m.mean is None:
                value = f"n/a: {m.details.get('not_applicable', 'no values')}"
            else:
                value = f"{m.mean:.4f} [{_fmt(m.ci_low)}, {_fmt(m.ci_high)}], n={m.n}"
                if m.details.get("trivial"):
                    value += " (trivial by construction)"
            click.echo(f"    {m.method:<22} {m.metric:<26} {value}")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


@cli.command(name="list")
def list_() -> None:
    """List the registered data sets, attribution methods and metrics."""
    from harness.data import DATASETS
    from metrics.attribution import METHODS
    from metrics.registry import METRICS
    from metrics.suite import DEFAULT_METHODS, DEFAULT_METRICS

    click.echo("data sets: " + ", ".join(DATASETS))
    click.echo("attribution methods (* = default):")
    for name, entry in METHODS.items():
        click.echo(f"  {'*' if name in DEFAULT_METHODS else ' '} {name:<22} {entry.description}")
    click.echo("metrics (* = default; direction: higher or lower is better):")
    for name, spec in METRICS.items():
        direction = "higher" if spec.higher_is_better else "lower"
        click.echo(f"  {'*' if name in DEFAULT_METRICS else ' '} {name:<26} {spec.family:<13} {direction:<7} "
                   f"{spec.description}")  # fmt: skip


@cli.command()
@_DB
@click.option("--out", type=click.Path(path_type=Path), default=Path("leaderboard.md"), show_default=True)
def leaderboard(db: str, out: Path) -> None:
    """Regenerate leaderboard.md from the database."""
    from harness.evaluate import run_files_dir
    from harness.leaderboard import Files, build_leaderboard
    from harness.storage import open_database

    runs = run_files_dir(db, "x")
    files = None if runs is None else Files(out=out, root=runs.parent.parent)
    with open_database(db).begin() as s:
        text = build_leaderboard(s, files)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, out)
    click.echo(f"wrote {out}")


@cli.command()
@_DB
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON (a list of runs).")
def results(db: str, as_json: bool) -> None:
    """List completed runs."""
    from harness.records import result_record
    from harness.storage import completed_runs, open_database

    with open_database(db).begin() as s:
        records = [result_record(run) for run in completed_runs(s)]
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    for r in records:
        click.echo(
            f"{r['run_id']}  {r['model']:<28} {r['dataset']} {r['threat_model']} {r['eps_text']:<6} "
            f"n={r['n_examples']:<5} clean {100 * r['clean_acc']:5.1f}%  robust {100 * r['robust_acc']:5.1f}%"
        )


@cli.command()
@_DB
@click.option("--prune", is_flag=True, help="Delete interrupted and failed runs (their partial results too).")
def runs(db: str, prune: bool) -> None:
    """List every run with its status: running, complete, failed or interrupted."""
    from harness import ownership
    from harness.storage import INTERRUPTED, RUNNING, all_runs, open_database, transaction, utcnow

    with transaction(open_database(db)) as s:
        now = utcnow()
        for run in all_runs(s):
            status = run.status
            if status == RUNNING and not ownership.is_alive(run.owner_host, run.owner_pid, run.owner_start,
                                                             run.heartbeat_at, now):  # fmt: skip
                status = INTERRUPTED
            done = len(run.examples)
            line = (f"{run.id}  {status:<11} {run.model.name:<28} {run.dataset} {run.threat_model} {run.eps_text:<6} "
                    f"n={run.n_examples:<5} examples {done}/{run.n_examples}, scores {len(run.metrics)}  "
                    f"{run.created_at:%Y-%m-%d %H:%M}")  # fmt: skip
            if prune and status in ("failed", INTERRUPTED):
                s.delete(run)
                line += "  (pruned)"
            click.echo(line)


@cli.command()
@click.option("--method", type=click.Choice(["standard", "pgd-at", "trades"]), required=True)
@click.option("--dataset", default="fashion-mnist", show_default=True)
@click.option("--threat-model", default="Linf", show_default=True)
@click.option("--eps", default="0.1", show_default=True)
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--arch", default="gap-cnn", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--batch-size", default=128, show_default=True, type=int)
@click.option("--lr", default=1e-3, show_default=True, type=float, help="Peak learning rate (Adam, one-cycle).")
@click.option("--steps", default=10, show_default=True, type=int, help="PGD steps per training batch.")
@click.option("--step-size", default=None, help="PGD step size (default 2.5 * eps / steps).")
@click.option("--beta", default=6.0, show_default=True, type=float, help="TRADES trade-off.")
@click.option("--n-train", default=None, type=int, help="Use only the first n training images.")
@click.option("--eval-n", default=1000, show_default=True, type=int, help="Test images for the final check.")
@click.option("--device", default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Submission file to write.")
@click.option("--quiet", is_flag=True)
def train(quiet: bool, **options) -> None:
    """Train a reference model and write it as a submission."""
    from harness.train import TrainConfig
    from harness.train import train as train_model

    command = "robint-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = train_model(TrainConfig(command=command, progress=not quiet, **options))
    click.echo(
        f"wrote {report.submission} and {report.weights} ({report.seconds:.0f} s): "
        f"clean {100 * report.clean_acc:.1f}%, PGD-20 {100 * report.pgd_acc:.1f}%"
    )


@cli.command()
@click.option("--run", "run_id", required=True, help="Run id (a unique prefix is enough).")
@click.option("--format", "fmt", type=click.Choice(["archive", "robustbench"]), default="archive", show_default=True,
              help="archive: lossless JSON that `import` reads back; robustbench: a RobustBench model_info file.")
@_DB
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Directory (or .json file); default results/archive or results/robustbench.")
def export(run_id: str, fmt: str, db: str, out: Path | None) -> None:
    """Export a completed run."""
    from harness.rb_format import export_path, model_info
    from harness.records import archive_record
    from harness.storage import COMPLETE, get_run, open_database, transaction

    with transaction(open_database(db)) as s:
        run = get_run(s, run_id)
        if run.status != COMPLETE:
            raise HarnessError(f"run {run.id} is {run.status}, not complete", "export completed runs only")
        if fmt == "archive":
            record = archive_record(run)
            root = out or Path("results/archive")
            path = root if root.suffix == ".json" else root / f"{run.model.name}-{run.id}.json"
        else:
            record = model_info(run)
            root = out or Path("results/robustbench")
            path = root if root.suffix == ".json" else export_path(root, run)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)
    click.echo(f"wrote {path}")


@cli.command(name="import-robustbench")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_DB
def import_robustbench(paths: tuple[Path, ...], db: str) -> None:
    """Import RobustBench model_info JSON files (or directories of them) as reported entries for the leaderboard."""
    from harness.rb_format import import_reported
    from harness.storage import open_database, transaction

    with transaction(open_database(db)) as s:
        added = sum(import_reported(s, path) for path in paths)
    click.echo(f"imported {added} new reported entr{'y' if added == 1 else 'ies'}")


@cli.command(name="import")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@_DB
def import_(paths: tuple[Path, ...], db: str) -> None:
    """Import archived runs (files, or directories of *.json) into the database; known run ids are skipped."""
    from harness.records import import_archive_record
    from harness.storage import open_database

    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.glob("*.json")))
    sessions = open_database(db)
    added = 0
    for f in files:
        try:
            record = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise HarnessError(f"cannot read archived run {f}: {exc}", "restore the file from git") from None
        try:
            added += import_archive_record(sessions, record)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HarnessError(f"archived run {f} is malformed ({type(exc).__name__}: {exc})",
                               "restore the file from git, or re-export it with `robint-bench export`") from None
    click.echo(f"imported {added} new run(s) from {len(files)} file(s)")


@cli.command()
@click.option("--baseline", type=click.Path(path_type=Path), default=Path("results/baseline.json"), show_default=True)
@click.option("--z", default=3.0, show_default=True, type=float, help="Tolerance in standard errors of n.")
@click.option("--update", is_flag=True, help="Rewrite the baseline with the numbers measured now.")
@click.option("--submissions", type=click.Path(path_type=Path), default=Path("submissions"), show_default=True,
              help="Directory holding the reference models.")
@click.option("--only", multiple=True, help="Check only this reference model (repeatable).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--quiet", is_flag=True)
def check(baseline: Path, z: float, update: bool, submissions: Path, only: tuple[str, ...], data_dir: Path | None,
          quiet: bool) -> None:  # fmt: skip
    """Regression gate: re-run a fixed fast configuration on the reference models and compare with the baseline."""
    from harness.gate import REFERENCE_MODELS, compare, format_table, load_baseline, measure

    models = only or REFERENCE_MODELS
    now = measure(submissions, tuple(models), data_dir=data_dir, progress=not quiet)
    if update:
        merged = load_baseline(baseline) if baseline.exists() and only else {"config": now["config"], "models": {}}
        merged["models"].update(now["models"])
        baseline.parent.mkdir(parents=True, exist_ok=True)
        baseline.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
        click.echo(f"wrote {baseline} ({len(now['models'])} model(s))")
        return
    reference = load_baseline(baseline)
    reference["models"] = {k: v for k, v in reference["models"].items() if k in models}
    rows = compare(reference, now, z=z)
    click.echo(format_table(rows))
    failures = sum(r.failed for r in rows)
    click.echo(f"gate: {'FAIL' if failures else 'PASS'} ({failures} regression(s) in {len(rows)} numbers)")
    if failures:
        sys.exit(1)


def main() -> None:
    """Console entry point: one clear error line (exit 2) for user errors, tracebacks with --debug."""
    debug = "--debug" in sys.argv[1:] or os.environ.get("ROBINT_DEBUG") == "1"
    try:
        cli.main(standalone_mode=False)
    except HarnessError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if debug:
            raise
        first = (str(exc).strip().splitlines() or ["(no message)"])[0]
        click.echo(f"error: unexpected {type(exc).__name__}: {first} -- rerun with --debug and report it", err=True)
        sys.exit(1)
