"""``zoo``: train the models of a zoo spec that are missing, evaluate them all and archive their runs."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.options import DB_OPTION


@click.command()
@click.option(
    "--spec",
    type=click.Path(path_type=Path),
    default=Path("submissions/zoo/zoo.json"),
    show_default=True,
    help="The zoo spec (harness/train/zoo.py describes the format).",
)
@DB_OPTION
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Data directory (default ./data).")
@click.option(
    "--archive",
    "archive_dir",
    type=click.Path(path_type=Path),
    default=Path("results/archive"),
    show_default=True,
    help="Import archived runs from here first, and export every completed zoo run to it.",
)
@click.option("--no-archive", is_flag=True, help="Neither import nor export archived runs.")
@click.option("--only", default=None, metavar="NAME[,NAME...]", help="Only these models of the spec.")
@click.option("--train-only", is_flag=True, help="Train what is missing; evaluate nothing.")
@click.option("--eval-only", is_flag=True, help="Evaluate the models that exist; train nothing.")
@click.option("--n-examples", type=int, default=None, help="Test examples per run [default: the spec's].")
@click.option("--attack", default=None, help="AutoAttack version or comma list [default: the spec's].")
@click.option("--metrics", default=None, help="Interpretability metrics [default: the spec's, else default].")
@click.option("--methods", default=None, help="Attribution methods [default: the spec's, else default].")
@click.option("--featurevis/--no-featurevis", default=None, help="Feature visualisation [default: as `run`].")
@click.option("--device", default="auto", show_default=True, help="Training and evaluation device.")
@click.option(
    "--rescore",
    is_flag=True,
    help="Recompute the interpretability scores of identical completed runs (keeping their attack results).",
)
@click.option("--trusted", is_flag=True, help="Run the submissions in this process, without the sandbox.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def zoo(
    spec: Path,
    db: str,
    data_dir: Path | None,
    archive_dir: Path,
    no_archive: bool,
    only: str | None,
    train_only: bool,
    eval_only: bool,
    device: str,
    rescore: bool,
    trusted: bool,
    quiet: bool,
    **settings,
) -> None:
    """Rebuild the model zoo: train the spec's models whose files are missing, then evaluate every model (an
    identical completed run is reused, an interrupted one resumed) and export each run to the archive.

    Settings given here apply to the models without their own (a model's own evaluation settings in the spec win)."""
    from harness.core.errors import HarnessError
    from harness.pipeline.zoo import evaluate_zoo
    from harness.train.zoo import load_spec, train_missing

    if train_only and eval_only:
        raise HarnessError("--train-only and --eval-only exclude each other", "pass one of them")
    zoo_spec = load_spec(spec)
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    zoo_spec.select(names)  # unknown names fail before anything runs
    failed = []
    if not eval_only:
        train_missing(zoo_spec, only=names, device=device, data_dir=data_dir, progress=not quiet, on_done=_echo_trained)
    if not train_only:
        overrides = {k: v for k, v in settings.items() if v is not None}
        runs = evaluate_zoo(
            zoo_spec,
            only=names,
            overrides=overrides,
            db=db,
            data_dir=data_dir,
            archive_dir=None if no_archive else archive_dir,
            device=device,
            rescore=rescore,
            trusted=trusted,
            progress=not quiet,
            on_done=_echo_run,
        )
        failed = [r.name for r in runs if r.status == "failed"]
    if failed:
        raise HarnessError(f"{len(failed)} zoo model(s) failed: {', '.join(failed)}", "see the lines above")


def _echo_trained(result) -> None:
    if result.report is None:
        click.echo(f"train {result.name}: {'exists' if result.status == 'exists' else 'given'}, not trained")
        return
    r = result.report
    text = (
        f"train {result.name}: trained in {r.seconds:.0f} s (CPU {r.cpu_seconds:.0f} s, {r.epochs_run} epochs"
        + (f", resumed after epoch {r.resumed_from_epoch}" if r.resumed_from_epoch else "")
        + f"): clean {100 * r.clean_acc:.1f}%, PGD-20 {100 * r.pgd_acc:.1f}%"
    )
    if r.catastrophic_overfitting:
        co = r.catastrophic_overfitting
        text += f"; catastrophic overfitting at epoch {co['epoch']}, restored epoch {co['restored_epoch']}"
    click.echo(text)


def _echo_run(run) -> None:
    from harness.report.escape import terminal

    if run.status in ("missing", "failed"):
        click.echo(f"eval {run.name}: {run.status}: {terminal(run.error or '', 2000)}")
        return
    archived = f"; wrote {run.archive}" if run.exported else (f"; {run.archive} up to date" if run.archive else "")
    click.echo(
        f"eval {run.name}: {run.status} run {run.run_id} ({run.attack}, n={run.n_examples}, {run.seconds:.0f} s): "
        f"clean {100 * run.clean_acc:.1f}%, robust {100 * run.robust_acc:.1f}%{archived}"
    )


COMMANDS = (zoo,)  # registered on the command group by harness/cli/app.py
