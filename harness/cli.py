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
@click.option("--model", "model", type=click.Path(path_type=Path), required=True, help="Submission .py file.")
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
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run(model: Path, quiet: bool, **options) -> None:
    """Evaluate one submission with AutoAttack and store the run."""
    from harness.evaluate import RunConfig, evaluate

    summary = evaluate(RunConfig(model=model, progress=not quiet, **options))
    c = summary.config
    verb = "reused identical completed run" if summary.reused else "stored run"
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


@cli.command()
@_DB
@click.option("--out", type=click.Path(path_type=Path), default=Path("leaderboard.md"), show_default=True)
def leaderboard(db: str, out: Path) -> None:
    """Regenerate leaderboard.md from the database."""
    from harness.leaderboard import build_leaderboard
    from harness.storage import open_database

    with open_database(db).begin() as s:
        text = build_leaderboard(s)
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
@click.option("--format", "fmt", type=click.Choice(["archive"]), default="archive", show_default=True)
@_DB
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/archive"), show_default=True,
              help="Directory (or .json file) to write.")  # fmt: skip
def export(run_id: str, fmt: str, db: str, out: Path) -> None:
    """Export a completed run (archive: lossless JSON that `import` reads back)."""
    from harness.records import archive_record
    from harness.storage import COMPLETE, get_run, open_database

    with open_database(db).begin() as s:
        run = get_run(s, run_id)
        if run.status != COMPLETE:
            raise HarnessError(f"run {run.id} is {run.status}, not complete", "export completed runs only")
        record = archive_record(run)
    path = out if out.suffix == ".json" else out / f"{record['model']['name']}-{record['run']['id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)
    click.echo(f"wrote {path}")


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
        with sessions.begin() as s:
            added += import_archive_record(s, record)
    click.echo(f"imported {added} new run(s) from {len(files)} file(s)")


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
