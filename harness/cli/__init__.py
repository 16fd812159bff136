"""The ``robint-bench`` command line: click commands only (parse flags, build a config, call the library, print).

Each sub-module holds a few commands; heavy libraries are imported inside the commands, so ``--help`` is fast.
"""

from __future__ import annotations

import os
import sys

import click

from harness.cli.app import cli
from harness.core import allocator, threads
from harness.core.errors import HarnessError
from harness.report.escape import terminal
from metrics.registry_base import UnknownNameError

__all__ = ["cli", "main"]


def usage_error(exc: click.ClickException) -> str:
    """A click error as ``<problem> -- see `robint-bench <command> --help```, on one line."""
    problem = " ".join(terminal(exc.format_message(), 1000).replace("\\n", " ").split())
    names = []
    ctx = getattr(exc, "ctx", None)
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    command = " ".join(["robint-bench", *reversed(names)])
    return f"{problem} -- see `{command} --help`"


def main() -> None:
    """Console entry point: one clear error line (exit 2) for user errors, tracebacks with --debug. Error text can
    come from a submission (its exceptions, its METADATA): control characters are shown escaped, so an error is
    always one line and no escape sequence reaches the terminal."""
    debug = "--debug" in sys.argv[1:] or os.environ.get("ROBINT_DEBUG") == "1"
    threads.apply(threads.decide())  # before torch loads: this process and its workers use the cores available
    allocator.tune()
    try:
        cli.main(standalone_mode=False)
    except (HarnessError, UnknownNameError) as exc:
        if debug:
            raise
        click.echo(f"error: {terminal(exc, 4000)}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # click's own usage errors: the same one line, naming the command's help
        click.echo(f"error: {usage_error(exc)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: still one line unless --debug
        if debug:
            raise
        first = terminal((str(exc).strip().splitlines() or ["(no message)"])[0], 1000)
        click.echo(f"error: unexpected {type(exc).__name__}: {first} -- rerun with --debug and report it", err=True)
        sys.exit(1)
