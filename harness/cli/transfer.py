"""``export``, ``import`` and ``import-robustbench``: runs in and out of the database as files."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.options import DB_OPTION
from harness.report.escape import terminal


@click.command()
@click.option(
    "--run", "run_ids", required=True, multiple=True, help="Run id (a unique prefix is enough); repeat it for several."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["archive", "robustbench"]),
    default="archive",
    show_default=True,
    help="archive: lossless JSON that `import` reads back (gzip-compressed, unless --out names a .json file); "
    "robustbench: a RobustBench model_info file.",
)
@DB_OPTION
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory (or .json file, or for an archive .json.gz); default results/archive or results/robustbench.",
)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="KEY=VALUE",
    help="robustbench format: a METADATA fact it needs (link, paper, authors, venue, additional_data, architecture, "
    "reported_acc, number_forward_passes, footnote), given or overridden here (repeatable).",
)
@click.option(
    "--fields-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="robustbench format: a JSON object of those facts (--field overrides its keys).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def export(
    run_ids: tuple[str, ...],
    fmt: str,
    db: str,
    out: Path | None,
    fields: tuple[str, ...],
    fields_file: Path | None,
    force: bool,
) -> None:
    """Export completed runs (``--run`` repeated), each as an archive record or as a RobustBench model_info file
    (RobustBench's fields only) with robint-bench's own scores in a sidecar beside it (robint-bench/<model>.json)."""
    from harness import store
    from harness.store.archive import export_run
    from harness.store.robustbench import parse_fields, read_fields_file, sidecar_path

    given = {**(read_fields_file(fields_file) if fields_file else {}), **parse_fields(fields)}
    sessions = store.open_database(db)
    for run_id in run_ids:
        with store.transaction(sessions) as s:
            path = export_run(s, run_id, out, fmt=fmt, fields=given or None, force=force)
        click.echo(f"wrote {path}")
        if fmt == "robustbench":
            click.echo(f"wrote {sidecar_path(path)} (robint-bench's own scores)")


@click.command(name="import-robustbench")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@DB_OPTION
def import_robustbench(paths: tuple[Path, ...], db: str) -> None:
    """Import RobustBench model_info JSON files (or directories of them) as reported entries for the leaderboard.

    Each file is imported on its own: a bad file is one error line naming it (exit status 2), the others land. A line
    per board says how many entries were new and which files were flagged, and why."""
    from harness import store
    from harness.store.robustbench import import_reported

    sessions = store.open_database(db)
    added = known = 0
    errors = []
    for path in paths:
        report = import_reported(sessions, path)
        added, known, errors = added + report.added, known + report.known, errors + report.errors
        for line in report.by_board():
            click.echo(f"  {line}")
    for _, exc in errors:
        click.echo(f"error: {terminal(str(exc))}", err=True)
    tail = f" ({known} already imported)" if known else ""
    if errors:
        tail += f"; {len(errors)} file{'s' if len(errors) != 1 else ''} could not be imported"
    click.echo(f"imported {added} new reported entr{'y' if added == 1 else 'ies'}{tail}")
    if errors:
        raise SystemExit(2)


@click.command(name="import")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@DB_OPTION
def import_(paths: tuple[Path, ...], db: str) -> None:
    """Import archived runs (files, or directories of *.json.gz and *.json) into the database; known run ids skipped.

    Each file is verified (types, ranges, names, its accuracies against its per-example rows) and imported on its
    own: a bad file is one error line naming it (exit status 2), the others land. The figures of the runs that pass,
    in runs/<run id>/ beside the archive's directory, are copied beside a SQLite database (none of a refused run)."""
    from harness import store
    from harness.pipeline.imports import import_archives
    from harness.store.archive import copy_archived_figures
    from harness.store.files import files_root

    report = import_archives(store.open_database(db), paths)
    for exc in report.errors:
        click.echo(f"error: {terminal(str(exc))}", err=True)
    tail = f"; {len(report.errors)} file(s) could not be imported" if report.errors else ""
    click.echo(f"imported {report.added} new run(s) from {report.files} file(s){tail}")
    root = files_root(db)
    if root is not None and (copied := copy_archived_figures(report.verified, root / "runs")):  # refused: none
        click.echo(f"copied the figures of {copied} run(s) into {root / 'runs'} (from runs/ beside the archive)")
    if report.errors:
        raise SystemExit(2)


COMMANDS = (
    export,
    import_robustbench,
    import_,
)  # registered on the command group by harness/cli/app.py
