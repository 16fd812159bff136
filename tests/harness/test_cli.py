"""The command line: help everywhere, one clear error line (the full bad-input corpus is tests/bad_inputs)."""

from tests.conftest import run_cli


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not sqlite")
    proc = run_cli("results", "--json", "--db", f"sqlite:///{path}")
    assert proc.returncode == 2 and "is not a SQLite database" in proc.stderr
    assert path.read_text() == "not sqlite"


def test_help_on_every_command():
    for command in ("run", "runs", "leaderboard", "results", "train", "export", "import", "list"):
        proc = run_cli(command, "--help")
        assert proc.returncode == 0 and "Usage:" in proc.stdout
