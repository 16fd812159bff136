"""A database made by schema version 1 upgrades in place, keeping its rows."""

import json
import sqlite3
from pathlib import Path

from harness import store
from tests.conftest import run_cli

V1 = Path(__file__).parents[1] / "fixtures" / "schema_v1.sql"


def _make_v1(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.executescript(V1.read_text())
        con.execute(
            "INSERT INTO models VALUES (1, 'old_model', 'old.py', ?, NULL, ?, '2026-01-01 00:00:00')",
            ("cd" * 32, json.dumps({"name": "old_model", "training": {"method": "pgd-at"}})),
        )
        con.execute(
            "INSERT INTO runs VALUES ('oldrun000001', 1, 'fashion-mnist', 'Linf', 0.1, '0.1', 2, 0, 'standard', 'k',"
            " 'complete', 0.5, 0.5, '{}', ?, '{}', '{}', '[]', NULL, '2026-01-01 00:00:00', '2026-01-01 01:00:00')",
            (json.dumps({"versions": {"torch": "2.14.1"}}),),
        )
        con.executemany("INSERT INTO examples VALUES ('oldrun000001', ?, 1, 1, ?, 1, ?, 0.1)", [(0, 1, 1), (1, 2, 0)])


def test_v1_database_upgrades_in_place(tmp_path):
    db = tmp_path / "old.db"
    _make_v1(db)
    proc = run_cli("results", "--json", "--db", f"sqlite:///{db}")
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(proc.stdout)
    assert record["run_id"] == "oldrun000001" and record["model"] == "old_model" and record["robust_acc"] == 0.5
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT value FROM robint_meta WHERE key = 'schema_version'").fetchone()[0] == str(
            store.SCHEMA_VERSION
        )
        columns = {row[1] for row in con.execute("PRAGMA table_info(runs)")}
        assert {"owner_host", "owner_pid", "owner_start", "heartbeat_at"} <= columns
        assert con.execute("SELECT COUNT(*) FROM examples").fetchone()[0] == 2
        assert "artifacts" in {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    # a second open is a no-op, and the leaderboard reads the old run
    out = tmp_path / "lb.md"
    assert run_cli("leaderboard", "--db", f"sqlite:///{db}", "--out", str(out)).returncode == 0
    assert "old_model" in out.read_text()


def test_newer_schema_is_refused(tmp_path):
    db = tmp_path / "future.db"
    _make_v1(db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE robint_meta SET value = '99' WHERE key = 'schema_version'")
    before = db.read_bytes()
    proc = run_cli("results", "--db", f"sqlite:///{db}")
    assert proc.returncode == 2 and "schema version 99" in proc.stderr
    assert db.read_bytes() == before
