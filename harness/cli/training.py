"""``train``: the reference trainer, writing a submission file."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click


@click.command()
@click.option(
    "--method",
    type=click.Choice(["standard", "pgd-at", "trades", "fgsm-rs"]),
    required=True,
    help="fgsm-rs: fast adversarial training (Wong et al. 2020), with the catastrophic-overfitting check.",
)
@click.option("--dataset", default="fashion-mnist", show_default=True)
@click.option("--threat-model", default="Linf", show_default=True)
@click.option("--eps", default="0.1", show_default=True)
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--arch", default="gap-cnn", show_default=True, help="gap-cnn, gap-cnn-wide or resnet8-gap.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--batch-size", default=128, show_default=True, type=int)
@click.option("--lr", default=1e-3, show_default=True, type=float, help="Peak learning rate (Adam, one-cycle).")
@click.option("--steps", default=10, show_default=True, type=int, help="PGD steps per training batch.")
@click.option(
    "--step-size", default=None, help="PGD step size (default 2.5 * eps / steps); fgsm-rs: alpha (default 1.25 * eps)."
)
@click.option("--beta", default=6.0, show_default=True, type=float, help="TRADES trade-off.")
@click.option("--n-train", default=None, type=int, help="Use only the first n training images.")
@click.option("--eval-n", default=1000, show_default=True, type=int, help="Test images for the final check.")
@click.option(
    "--overfit-check/--no-overfit-check",
    default=None,
    help="After every epoch, PGD-10 accuracy on held-out training images; on a collapse, stop and restore the best "
    "epoch [default: on for fgsm-rs].",
)
@click.option(
    "--check-n", default=500, show_default=True, type=int, help="Training images held out for the overfitting check."
)
@click.option(
    "--overfit-drop",
    default=0.5,
    show_default=True,
    type=float,
    help="A collapse: check accuracy below this fraction of the best so far.",
)
@click.option("--device", default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Submission file to write.")
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    default=None,
    help="Save the training state here after every epoch, and resume from it when it exists.",
)
@click.option("--quiet", is_flag=True)
def train(quiet: bool, **options) -> None:
    """Train a reference model and write it as a submission."""
    from harness.train.trainer import TrainConfig
    from harness.train.trainer import train as train_model

    command = "robint-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = train_model(TrainConfig(command=command, progress=not quiet, **options))
    click.echo(
        f"wrote {report.submission} and {report.weights} ({report.seconds:.0f} s): "
        f"clean {100 * report.clean_acc:.1f}%, PGD-20 {100 * report.pgd_acc:.1f}%"
    )
    if report.catastrophic_overfitting:
        co = report.catastrophic_overfitting
        click.echo(
            f"catastrophic overfitting at epoch {co['epoch']} (check accuracy {co['pgd_acc']:.3f}): "
            f"stopped and restored epoch {co['restored_epoch']} ({co['best_pgd_acc']:.3f})"
        )


COMMANDS = (train,)  # registered on the command group by harness/cli/app.py
