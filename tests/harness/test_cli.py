"""User errors at the command line: one clear line on stderr, a non-zero exit, nothing stored."""

import sqlite3

import pytest

from tests.conftest import SUBMISSIONS, run_cli


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--eps", "8/0"], "malformed eps '8/0'"),
        (["--eps", "-1"], "eps -1 is out of range"),
        (["--dataset", "cifar11"], "unknown data set 'cifar11'"),
        (["--n-examples", "20000"], "outside the 10000 test images"),
        (["--attack", "pgd"], "unknown attack"),
    ],
)
def test_bad_run_options(tmp_path, data_dir, extra, message):
    db = tmp_path / "r.db"
    proc = run_cli("run", "--model", str(SUBMISSIONS / "fmnist_standard.py"), "--db", f"sqlite:///{db}",
                   "--data-dir", str(data_dir), *extra)  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not sqlite")
    proc = run_cli("results", "--json", "--db", f"sqlite:///{path}")
    assert proc.returncode == 2 and "is not a SQLite database" in proc.stderr
    assert path.read_text() == "not sqlite"


def test_help_on_every_command():
    for command in ("run", "leaderboard", "results", "train", "export", "import"):
        proc = run_cli(command, "--help")
        assert proc.returncode == 0 and "Usage:" in proc.stdout
