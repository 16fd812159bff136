"""The command group; importing it registers every command module's ``COMMANDS`` (the modules never import the
group, so the CLI has no import cycle). Options several commands share are in harness/cli/options.py."""

from __future__ import annotations

import click

from harness.cli import evaluate, gate, reports, sweep, training, transfer, zoo
from harness.cli.options import DB_OPTION

__all__ = ["DB_OPTION", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one error line.")
@click.version_option(package_name="robint-bench")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """robint-bench: how robust is an image classifier, and how interpretable?"""
    ctx.obj = {"debug": debug}


for _module in (evaluate, gate, reports, sweep, training, transfer, zoo):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
