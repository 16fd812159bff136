"""``sweep``: evaluate many models, one submitit job each (Slurm where available, else local processes)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.options import DB_OPTION


@click.command()
@click.argument("submissions", nargs=-1, type=click.Path(exists=True, path_type=Path, dir_okay=False))
@click.option("--robustbench", multiple=True, metavar="MODEL_ID", help="A RobustBench zoo model (repeatable).")
@click.option("--zoo", type=click.Path(path_type=Path), default=None, help="The trained models of a zoo spec.")
@click.option("--only", default=None, metavar="NAME[,NAME...]", help="With --zoo: only these models.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None, help="A sweep config (JSON).")
@click.option("--name", default=None, help="The sweep's id [default: a hash of its models and settings].")
@DB_OPTION
@click.option(
    "--executor",
    type=click.Choice(["auto", "slurm", "local"]),
    default="auto",
    show_default=True,
    help="auto: Slurm when sbatch is there, else local processes.",
)
@click.option("--partition", default=None, help="Slurm partition.")
@click.option("--gpus", "gpus", type=int, default=None, help="GPUs per job [default: 1 on Slurm, 0 locally].")
@click.option("--time-limit", type=int, default=None, help="Minutes per job [default: 240].")
@click.option("--cpus", type=int, default=None, help="CPUs per job.")
@click.option("--mem-gb", type=float, default=None, help="Memory per job (GB).")
@click.option("--parallel", type=int, default=None, help="Jobs at once [default: 1 locally, 64 on Slurm].")
@click.option(
    "--jobs-dir",
    type=click.Path(path_type=Path),
    default=Path("results/sweeps"),
    show_default=True,
    help="submitit's job folders (logs).",
)
@click.option("--wait/--no-wait", default=True, help="Wait for the jobs and report each (local jobs always wait).")
@click.option("--dataset", default=None)
@click.option("--threat-model", default=None)
@click.option("--eps", default=None)
@click.option("--n-examples", type=int, default=None)
@click.option("--attack", default=None)
@click.option("--seed", type=int, default=None)
@click.option("--batch-size", default=None, help="A number, or auto (see `robint-bench run --help`).")
@click.option("--chunk-size", type=int, default=None)
@click.option("--metrics", default=None)
@click.option("--methods", default=None)
@click.option("--n-explain", type=int, default=None)
@click.option("--n-sanity", type=int, default=None, help="Images of the randomisation (sanity) tests.")
@click.option("--n-composites", type=int, default=None, help="GridPG composites (2x2 grids of test images).")
@click.option("--featurevis/--no-featurevis", default=None)
@click.option("--device", default=None, help="Each job's device [default: auto].")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--model-dir", type=click.Path(path_type=Path), default=None)
def sweep(
    submissions: tuple[Path, ...],
    robustbench: tuple[str, ...],
    zoo: Path | None,
    only: str | None,
    config_file: Path | None,
    name: str | None,
    db: str,
    executor: str,
    partition: str | None,
    gpus: int | None,
    time_limit: int | None,
    cpus: int | None,
    mem_gb: float | None,
    parallel: int | None,
    jobs_dir: Path,
    wait: bool,
    **settings,
) -> None:
    """Evaluate many models (submission files, RobustBench ids, a zoo spec's models or a config file), one job per
    model through submitit. Every job writes to --db; rerunning the sweep skips models with a complete run and
    resumes interrupted ones. Follow it with `robint-bench runs --sweep ID`."""
    from harness.pipeline.batching import parse_batch_size
    from harness.pipeline.sweep import Cluster, collect_entries, run_sweep

    run = {k: v for k, v in settings.items() if v is not None}
    if "batch_size" in run:
        run["batch_size"] = parse_batch_size(run["batch_size"])
    for key in ("data_dir", "model_dir"):
        if key in run:
            run[key] = run[key].resolve()
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    entries, options = collect_entries(
        submissions=submissions, robustbench=robustbench, zoo=zoo, only=names, config_file=config_file, settings=run
    )
    cluster = Cluster(
        executor=executor,
        partition=partition or options.get("partition"),
        gpus=gpus if gpus is not None else options.get("gpus"),
        time_limit=time_limit or options.get("time_limit", 240),
        cpus=cpus or options.get("cpus"),
        mem_gb=mem_gb or options.get("mem_gb"),
        parallel=parallel or options.get("parallel"),
        folder=jobs_dir,
    )
    run_sweep(entries, db=db, cluster=cluster, name=name or options.get("name"), wait=wait, echo=click.echo)


COMMANDS = (sweep,)  # registered on the command group by harness/cli/app.py
