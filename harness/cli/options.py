"""Options several commands share (each command module imports them; none imports the command group)."""

from __future__ import annotations

import click

from harness.core.config import DEFAULT_DB

DB_OPTION = click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLAlchemy database URL.")
