"""The command group and the options several commands share; importing it registers every command."""

from __future__ import annotations

import click

from harness.config import DEFAULT_DB

DB_OPTION = click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLAlchemy database URL.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one error line.")
@click.version_option(package_name="robint-bench")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """robint-bench: how robust is an image classifier, and how interpretable?"""
    ctx.obj = {"debug": debug}


from harness.cli import evaluate, gate, reports, sweep, training, transfer, zoo  # noqa: E402,F401  (registers the commands)
