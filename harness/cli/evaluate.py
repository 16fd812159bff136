"""``run`` (evaluate one model) and ``list`` (what can be evaluated and scored)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.checks import check_run_options
from harness.cli.options import DB_OPTION
from harness.core.config import RunConfig
from harness.core.presets import PRESETS

_DEFAULTS = RunConfig()
_PRESETS = "; ".join(f"{name}: {text}" for name, text in PRESETS.items())


@click.command()
@click.option("--model", "model", type=click.Path(path_type=Path), default=None, help="Submission .py file.")
@click.option("--robustbench", default=None, metavar="MODEL_ID", help="A RobustBench zoo model instead of --model.")
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="RobustBench checkpoints: <dir>/<dataset>/<threat model>/<id>.pt (default ./models).",
)
@click.option("--dataset", default=None, help="Data set (default: the submission's METADATA).")
@click.option("--n-examples", default=_DEFAULTS.n_examples, show_default=True, type=int, help="First n test examples.")
@click.option("--threat-model", default=None, help="Linf or L2 (default: METADATA, else the data set's).")
@click.option("--eps", default=None, help="Budget, e.g. 0.1 or 8/255 (default: METADATA, else the data set's).")
@click.option(
    "--attack", default=_DEFAULTS.attack, show_default=True, help="standard, plus, rand, or apgd-ce,apgd-t,..."
)
@click.option("--seed", default=_DEFAULTS.seed, show_default=True, type=int)
@click.option(
    "--batch-size",
    default=_DEFAULTS.batch_size,
    type=str,
    show_default=True,
    help="Images per forward pass and attack chunk, or auto: the largest that fits the device (the chunk then "
    "stays 250, see --chunk-size).",
)
@click.option(
    "--chunk-size",
    type=int,
    default=None,
    help="Images per attack chunk (one seeded AutoAttack call: it fixes the numbers) [default: --batch-size, or 250 "
    "with --batch-size auto].",
)
@click.option("--device", default=_DEFAULTS.device, show_default=True, help="auto, cpu, cuda or cuda:N.")
@DB_OPTION
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Data directory (default ./data).")
@click.option("--fresh", is_flag=True, help="Run again even if an identical completed run exists.")
@click.option(
    "--metrics",
    default=_DEFAULTS.metrics,
    show_default=True,
    help="Interpretability metrics: default, all, none, or a comma list (see `robint-bench list`).",
)
@click.option(
    "--methods",
    default=_DEFAULTS.methods,
    show_default=True,
    help="Attribution methods: default, all, or a comma list.",
)
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default=_DEFAULTS.preset,
    show_default=True,
    help=f"Defaults of the settings below that explicit options override ({_PRESETS}).",
)
@click.option(
    "--n-explain",
    default=_DEFAULTS.n_explain,
    show_default=True,
    type=int,
    help="Test images explained and scored (quick: 10% of n, at least 10).",
)
@click.option(
    "--n-sanity",
    default=_DEFAULTS.n_sanity,
    show_default=True,
    type=int,
    help="Images of the randomisation (sanity) metrics, each re-explained once per randomised layer (quick: 1.6% "
    "of n, at least 2).",
)
@click.option(
    "--n-composites",
    default=_DEFAULTS.n_composites,
    show_default=True,
    type=int,
    help="GridPG composites scored: 2x2 grids of test images of four distinct classes, drawn whatever the model "
    "predicts (quick: 1.6% of n, at least 1).",
)
@click.option(
    "--explain-target",
    type=click.Choice(["label", "predicted"]),
    default=_DEFAULTS.explain_target,
    show_default=True,
    help="Class the attributions explain: the true label or the model's prediction.",
)
@click.option(
    "--explain-output",
    type=click.Choice(["logit", "probability"]),
    default=_DEFAULTS.explain_output,
    show_default=True,
    help="The function of the model every attribution method explains: the target logit or its softmax probability.",
)
@click.option(
    "--rescore",
    is_flag=True,
    help="Recompute the interpretability and feature-visualisation scores of an identical completed run, keeping "
    "its attack results (after the suite changed).",
)
@click.option(
    "--reliability",
    is_flag=True,
    help="Also measure the headline metrics' reliability (MetaQuantus noise resilience and adversary reactivity; "
    "costly).",
)
@click.option(
    "--method-option",
    "method_options",
    multiple=True,
    metavar="METHOD.KEY=VALUE",
    help="Attribution setting, e.g. integrated_gradients.n_steps=50 (repeatable).",
)
@click.option(
    "--featurevis/--no-featurevis",
    default=None,
    help="Representation inversion and class generation, scored with the reference encoder "
    "[default: on with the default or 'all' metric suite].",
)
@click.option(
    "--featurevis-option",
    "featurevis_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Feature-visualisation setting, e.g. inversion_steps=2000 or per_class=50 (repeatable).",
)
@click.option("--trusted", is_flag=True, help="Run the submission in this process, without the sandbox (debugging).")
@click.option(
    "--stall-timeout",
    default=_DEFAULTS.stall_timeout,
    show_default=True,
    type=float,
    help="Stop a worker that makes no progress (no forward pass) for this many seconds.",
)
@click.option(
    "--timeout",
    default=None,
    help="Wall-clock limit for the whole evaluation in seconds, or none [default: derived from the run's size, "
    "see README, Security model].",
)
@click.option(
    "--memory-limit",
    default=_DEFAULTS.memory_limit,
    show_default=True,
    help="Worker memory limit: auto (min of 16G and 75% of RAM), none, or e.g. 8G.",
)
@click.option("--cpu-limit", default=None, type=int, help="Worker CPU-time limit in seconds.")
@click.option(
    "--process-limit",
    default=_DEFAULTS.process_limit,
    show_default=True,
    help="Processes and threads per worker: auto (256 + 4 per CPU), none, or a number.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--verbose", is_flag=True, help="At the end, every stored score (default: the headline ones).")
@click.pass_context
def run(ctx: click.Context, model: Path | None, quiet: bool, verbose: bool, **options) -> None:
    """Evaluate one submission with AutoAttack and interpretability metrics, and store the run.

    Prints the resolved settings and an estimate of the time first, then AutoAttack's log and each stage, and at
    the end a short summary: accuracies, the headline scores with their intervals, flags, figures."""
    from click.core import ParameterSource

    from harness.core.presets import apply_preset

    options = check_run_options({"model": model, **options})  # paths and numbers: before anything heavy is imported
    options["method_options"] = tuple(options["method_options"])
    options["featurevis_options"] = tuple(options["featurevis_options"])
    explicit = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    given = {name for name in options if ctx.get_parameter_source(name) in explicit}
    config = apply_preset(RunConfig(progress=not quiet, **options), given)

    from harness.pipeline.evaluate import evaluate
    from harness.report.summary import run_summary

    summary = evaluate(config, echo=click.echo)
    verb = (
        "reused identical completed run"
        if summary.reused
        else "resumed and stored run"
        if summary.resumed
        else "stored run"
    )
    for line in run_summary(config.db, summary.run_id, verb=verb, verbose=verbose, seconds=summary.timings):
        click.echo(line)


@click.command(name="list")
def list_() -> None:
    """List the registered data sets, attacks, RobustBench zoo models, attribution methods and metrics."""
    import textwrap

    from harness.attack.registry import combinable, versions
    from harness.data import DATASETS
    from metrics.attribution import METHODS
    from metrics.registry import METRICS
    from metrics.suite import DEFAULT_METHODS, DEFAULT_METRICS

    click.echo("data sets: " + ", ".join(DATASETS) + ", folder:PATH[@S|@HxW]")
    click.echo(
        f"attacks (--attack): AutoAttack {', '.join(s.name for s in versions())} (default: {_DEFAULTS.attack}), or a "
        f"comma list of {', '.join(s.name for s in combinable())} (cost: the budgets' attack units):"
    )
    for spec in (*versions(), *combinable()):
        runs = "" if spec.combinable else f" ({', '.join(spec.attacks)})"
        star = "*" if spec.name == _DEFAULTS.attack else " "
        click.echo(f"  {star} {spec.name:<10} cost {spec.units:<3} {spec.description}{runs}")
    click.echo("RobustBench zoo models (--robustbench ID --dataset D --threat-model T; ensembles are not loaded):")
    for (dataset, threat), ids in _zoo_ids().items():
        line = f"{dataset} {threat} ({len(ids)}): {', '.join(ids)}"
        click.echo(textwrap.fill(line, width=118, initial_indent="  ", subsequent_indent="      "))
    click.echo("attribution methods (* = default):")
    for name, entry in METHODS.items():
        click.echo(f"  {'*' if name in DEFAULT_METHODS else ' '} {name:<22} {entry.description}")
    click.echo("metrics (* = default; direction: higher or lower is better):")
    for name, spec in METRICS.items():
        direction = "higher" if spec.higher_is_better else "lower"
        click.echo(
            f"  {'*' if name in DEFAULT_METRICS else ' '} {name:<26} {spec.family:<13} {direction:<7} "
            f"{spec.description}"
        )


def _zoo_ids() -> dict[tuple[str, str], list[str]]:
    """RobustBench's Linf and L2 zoo ids per (data set, threat model), ensembles (several checkpoints) left out."""
    from harness.core.autoattack_shim import import_robustbench

    import_robustbench()
    from robustbench.model_zoo import model_dicts

    out = {}
    for dataset, by_threat in model_dicts.items():
        for threat, models in by_threat.items():
            if threat.value not in ("Linf", "L2"):  # corruption models are not evaluated by AutoAttack here
                continue
            ids = [name for name, entry in models.items() if not isinstance(entry.get("gdrive_id"), list)]
            if ids:
                out[(dataset.value, threat.value)] = ids
    return out


COMMANDS = (
    run,
    list_,
)  # registered on the command group by harness/cli/app.py
