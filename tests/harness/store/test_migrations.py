"""A database made by schema version 1 upgrades in place, keeping its rows; a newer schema is refused untouched.
Each test runs on SQLite and on a real PostgreSQL server (tests/harness/store/postgres.py)."""

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from harness import store
from tests.conftest import run_cli
from tests.harness.store import postgres
from tests.harness.store.postgres import BACKENDS, new_database

V1 = Path(__file__).parents[1] / "fixtures" / "schema_v1.sql"


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    return new_database(request.param, tmp_path)


def _v1_statements(dialect: str) -> list[str]:
    """The version-1 DDL as robint-bench 1 created it on ``dialect`` (the fixture is SQLite's; PostgreSQL spells
    DATETIME as TIMESTAMP and generates integer primary keys with SERIAL)."""
    sql = "\n".join(line for line in V1.read_text().splitlines() if not line.startswith("--"))
    if dialect == "postgresql":
        sql = sql.replace("DATETIME", "TIMESTAMP WITHOUT TIME ZONE").replace(
            "id INTEGER NOT NULL", "id SERIAL NOT NULL"
        )
    return [statement.strip() for statement in sql.split(";") if statement.strip()]


def _make_v1(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as con:
        for statement in _v1_statements(engine.dialect.name):
            con.execute(text(statement))
        con.execute(
            text("INSERT INTO models VALUES (1, 'old_model', 'old.py', :f, NULL, :info, '2026-01-01 00:00:00')"),
            {"f": "cd" * 32, "info": json.dumps({"name": "old_model", "training": {"method": "pgd-at"}})},
        )
        con.execute(
            text(
                "INSERT INTO runs VALUES ('oldrun000001', 1, 'fashion-mnist', 'Linf', 0.1, '0.1', 2, 0, 'standard', "
                "'k', 'complete', 1.0, 0.5, '{}', :prov, '{}', '{}', '[]', NULL, '2026-01-01 00:00:00', "
                "'2026-01-01 01:00:00')"
            ),
            {"prov": json.dumps({"versions": {"torch": "2.14.1"}})},
        )
        con.execute(
            text("INSERT INTO examples VALUES ('oldrun000001', :i, 1, 1, :a, true, :r, 0.1)"),
            [{"i": 0, "a": 1, "r": True}, {"i": 1, "a": 2, "r": False}],
        )
        if engine.dialect.name == "postgresql":  # as if the row had been inserted by the sequence
            con.execute(text("SELECT setval('models_id_seq', 1)"))
    engine.dispose()


def test_v1_database_upgrades_in_place(db_url, tmp_path):
    _make_v1(db_url)
    proc = run_cli("results", "--json", "--db", db_url)
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(proc.stdout)
    assert record["run_id"] == "oldrun000001" and record["model"] == "old_model" and record["robust_acc"] == 0.5
    engine = create_engine(db_url)
    with engine.connect() as con:
        version = con.execute(text("SELECT value FROM robint_meta WHERE key = 'schema_version'")).scalar_one()
        assert version == str(store.SCHEMA_VERSION)
        columns = {c["name"] for c in inspect(con).get_columns("runs")}
        assert {"owner_host", "owner_pid", "owner_start", "heartbeat_at"} <= columns
        assert con.execute(text("SELECT COUNT(*) FROM examples")).scalar_one() == 2
        assert "artifacts" in inspect(con).get_table_names()
    engine.dispose()
    # a second open is a no-op, and the leaderboard reads the old run
    out = tmp_path / "lb.md"
    assert run_cli("leaderboard", "--db", db_url, "--out", str(out)).returncode == 0
    assert "old_model" in out.read_text()


def test_concurrent_openers_migrate_once(db_url):
    """Several processes open a version-1 database at once: each upgrade step runs exactly once."""
    import multiprocessing

    _make_v1(db_url)
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        pool.map(postgres.open_database, [db_url] * 3)
    engine = create_engine(db_url)
    with engine.connect() as con:
        columns = [c["name"] for c in inspect(con).get_columns("runs")]
        assert columns.count("owner_pid") == 1
        version = con.execute(text("SELECT value FROM robint_meta WHERE key = 'schema_version'")).scalar_one()
        assert version == str(store.SCHEMA_VERSION)
    engine.dispose()


def test_concurrent_first_opens_create_the_schema_once(db_url):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        pool.map(postgres.open_database, [db_url] * 3)
    engine = create_engine(db_url)
    with engine.connect() as con:
        assert con.execute(text("SELECT COUNT(*) FROM robint_meta")).scalar_one() == 1
        assert set(store.Base.metadata.tables) <= set(inspect(con).get_table_names())
    engine.dispose()


def test_newer_schema_is_refused(db_url):
    _make_v1(db_url)
    engine = create_engine(db_url)
    with engine.begin() as con:
        con.execute(text("UPDATE robint_meta SET value = '99' WHERE key = 'schema_version'"))
    before = _snapshot(db_url)
    proc = run_cli("results", "--db", db_url)
    assert proc.returncode == 2 and "schema version 99" in proc.stderr
    assert _snapshot(db_url) == before
    engine.dispose()


def _snapshot(url: str):
    """The file's bytes (SQLite), or every table's columns and rows (a server)."""
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :]).read_bytes()
    engine = create_engine(url)
    with engine.connect() as con:
        tables = sorted(inspect(con).get_table_names())
        out = {
            t: (
                [c["name"] for c in inspect(con).get_columns(t)],
                sorted(map(tuple, con.execute(text(f'SELECT * FROM "{t}"'))), key=repr),
            )
            for t in tables
        }
    engine.dispose()
    return out


def test_a_missing_driver_names_the_extra():
    """``--db postgresql://`` without psycopg installed: one line naming ``.[postgres]`` (simulated in a child
    process whose import of psycopg fails)."""
    code = (
        "import sys; sys.modules['psycopg'] = None; sys.argv = ['robint-bench', 'results', '--db', "
        "'postgresql://u@127.0.0.1:1/x']; from harness.cli import main; main()"
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert ".[postgres]" in proc.stderr and "psycopg" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_an_unreachable_server_is_one_clear_line():
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed (pip install -e .[postgres])")
    proc = run_cli("results", "--db", "postgresql+psycopg://u:secret@127.0.0.1:1/x")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "cannot connect to database" in proc.stderr and "server is running" in proc.stderr
    assert "secret" not in proc.stderr
