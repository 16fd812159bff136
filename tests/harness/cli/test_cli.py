"""The command line: help everywhere, one clear error line (the full bad-input corpus is tests/bad_inputs)."""

import pytest
from click.testing import CliRunner

from harness.cli import cli
from tests.conftest import run_cli

COMMANDS = ("run", "runs", "leaderboard", "results", "train", "export", "import", "import-robustbench", "check", "list")


def test_not_a_database(tmp_path):
    """End to end through ``python -m harness`` in a process of its own: exit code 2, one line, the file untouched."""
    path = tmp_path / "notes.db"
    path.write_text("not sqlite")
    proc = run_cli("results", "--json", "--db", f"sqlite:///{path}", subprocess_only=True)
    assert proc.returncode == 2 and "is not a SQLite database" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert path.read_text() == "not sqlite"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_on_every_command(command):
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    assert "%%" not in result.output  # click does not %-format help texts


def test_every_command_is_registered():
    assert set(COMMANDS) <= set(cli.commands)


def test_run_defaults_come_from_the_run_configuration():
    from harness.core.config import RunConfig

    defaults = {p.name: p.default for p in cli.commands["run"].params}
    config = RunConfig()
    names = ("n_examples", "attack", "seed", "batch_size", "device", "metrics", "methods", "n_explain", "n_sanity")
    for name in (*names, "n_composites"):
        assert defaults[name] == getattr(config, name), name


def test_suite_sizes_reach_the_suite_and_are_checked():
    from harness.core.config import RunConfig
    from harness.core.errors import HarnessError
    from harness.pipeline.resolve import resolve_suite
    from metrics.suite import SuiteConfig

    suite = resolve_suite(RunConfig(n_examples=25, n_sanity=8, n_composites=4))
    assert (suite.n_explain, suite.n_sanity, suite.n_composites) == (25, 8, 4)
    # RunConfig restates the suite's defaults (config.py imports nothing heavy): they must agree
    default, library = resolve_suite(RunConfig()), SuiteConfig()
    assert (default.n_sanity, default.n_composites) == (library.n_sanity, library.n_composites)
    with pytest.raises(HarnessError, match="--n-composites 0 must be positive") as err:
        resolve_suite(RunConfig(n_composites=0))
    assert err.value.fix == "use e.g. 16"
