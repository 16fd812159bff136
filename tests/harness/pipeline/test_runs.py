"""Crash safety and concurrency: kill -9 loses at most the chunk in flight, resumes to identical numbers;
concurrent runs on one database all land; dead runs are listed and pruned; concurrent model and run inserts.

Every test takes the database URL from the ``db_url`` fixture: a SQLite file here; test_runs_postgres.py runs the
same tests on a real PostgreSQL server (tests/harness/store/postgres.py).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.store.archive import archive_files, read_archive
from tests.conftest import ROOT, SUBMISSIONS, run_cli
from tests.harness.store.postgres import count, new_database, rows

CONFIG = [  # two attack chunks: the kill lands after the first is committed, while the second is in flight
    "--n-examples",
    "8",
    "--batch-size",
    "4",
    "--attack",
    "apgd-ce",
    "--methods",
    "saliency",
    "--metrics",
    "sparseness,abpc",
    "--n-explain",
    "2",
    "--quiet",
]


@pytest.fixture
def db_url(tmp_path):
    return new_database("sqlite", tmp_path)


@pytest.mark.slow
def test_kill_9_then_resume_equals_an_uninterrupted_run(db_url, tmp_path, data_dir):
    from harness.core.config import RunConfig
    from harness.pipeline.resolve import resolve_suite

    model = str(SUBMISSIONS / "fmnist_pgd_linf.py")
    killed, clean = db_url, f"sqlite:///{tmp_path / 'clean.db'}"
    args = [sys.executable, "-m", "harness", "run", "--model", model, *CONFIG, "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        [*args, "--db", killed], cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    while count(killed, "SELECT COUNT(*) FROM examples") < 4 and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its sandboxed worker, mid-attack
    proc.wait()
    committed = count(killed, "SELECT COUNT(*) FROM examples")
    assert committed == 4  # whole chunks only
    assert json.loads(run_cli("results", "--json", "--db", killed).stdout) == []
    assert " interrupted " in run_cli("runs", "--db", killed).stdout

    resumed = run_cli(*args[3:], "--db", killed)  # the parent in this process (tests/conftest.py: IN_PROCESS)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed and stored run" in resumed.stdout
    uninterrupted = run_cli(*args[3:], "--db", clean)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert rows(killed) == rows(clean)
    pairs = resolve_suite(RunConfig(methods="saliency", metrics="sparseness,abpc", n_explain=2)).pairs()
    assert len(rows(killed)[0]) == 8 and len(rows(killed)[1]) == len(pairs)
    assert count(killed, "SELECT COUNT(*) FROM artifacts") == 0


@pytest.mark.slow
def test_four_concurrent_runs_on_one_database_all_land(db_url, data_dir):
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                "run",
                "--model",
                str(SUBMISSIONS / "fmnist_standard.py"),
                "--n-examples",
                "8",
                "--batch-size",
                "4",
                "--attack",
                "apgd-ce",
                "--metrics",
                "none",
                "--quiet",
                "--seed",
                str(seed),
                "--db",
                db_url,
                "--data-dir",
                str(data_dir),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # 8 processes on 2 cores: no thread spinning
        for seed in range(4)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err for _, err in outputs]
    records = json.loads(run_cli("results", "--json", "--db", db_url).stdout)
    assert sorted(r["seed"] for r in records) == [0, 1, 2, 3]
    assert count(db_url, "SELECT COUNT(*) FROM examples") == 32
    assert count(db_url, "SELECT COUNT(*) FROM models") == 1


def _stored_run(sessions, run_id: str, status: str, **fields) -> None:
    """A run row with two examples (as a run of the good_linear model would leave it)."""
    from harness import store

    model_id = store.ensure_model(
        sessions, name="m", source="m.py", file_sha256="f" * 64, weights_sha256="w" * 64, info={"name": "m"}
    )
    with store.transaction(sessions) as s:
        run = store.RunRecord(
            id=run_id,
            model_id=model_id,
            dataset="fashion-mnist",
            threat_model="Linf",
            eps=0.1,
            eps_text="0.1",
            n_examples=2,
            seed=len(run_id),
            attack="apgd-ce",
            config_key=run_id,
            status=status,
            config={},
            provenance={},
            **fields,
        )
        s.add(run)
        for i in range(2):
            s.add(
                store.ExampleRecord(
                    run_id=run_id,
                    idx=i,
                    label=1,
                    clean_pred=1,
                    adv_pred=i,
                    clean_correct=True,
                    robust_correct=i == 1,
                    perturbation=0.1,
                )
            )


def test_prune_removes_dead_runs_only(db_url):
    from harness import store

    sessions = store.open_database(db_url)
    _stored_run(sessions, "donerun00001", store.COMPLETE, clean_acc=1.0, robust_acc=0.5, finished_at=store.utcnow())
    # a run whose owner is long gone: pid 0 never matches a live process
    _stored_run(sessions, "deadrun00001", store.RUNNING, owner_host="elsewhere:x", owner_pid=0, owner_start="x")
    listing = run_cli("runs", "--prune", "--db", db_url).stdout
    assert "deadrun00001  interrupted" in listing and "(pruned)" in listing
    remaining = run_cli("runs", "--db", db_url).stdout
    assert "deadrun00001" not in remaining and "donerun00001  complete " in remaining
    assert count(db_url, "SELECT COUNT(*) FROM examples") == 2  # the pruned run's rows went with it


def test_a_model_inserted_concurrently_is_reused_not_reported_as_damage(db_url):
    """Two new runs of one model: the second INSERT of the model row loses the race and reads the winner's row."""
    from sqlalchemy import event, func, select

    from harness import store

    sessions, other = store.open_database(db_url), store.open_database(db_url)
    fields = {"name": "m", "source": "m.py", "file_sha256": "f" * 64, "weights_sha256": "w" * 64, "info": {}}
    raced = []

    def insert_first_from_another_process(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO models") and not raced:
            with other.begin() as s:  # commits between this process's SELECT (no row) and its INSERT
                raced.append(store.get_or_create_model(s, **fields).id)

    event.listen(sessions.kw["bind"], "before_cursor_execute", insert_first_from_another_process)
    assert store.ensure_model(sessions, **fields) == raced[0]
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(store.ModelRecord)) == 1


def test_a_run_imported_concurrently_lands_once(db_url):
    """Two imports of one archive: the second INSERT of the run loses the race and counts the run as present."""
    from sqlalchemy import event, func, select

    from harness import store
    from harness.store.archive import import_archive_record

    archived = archive_files([ROOT / "results" / "archive"])[0]
    record = json.loads(read_archive(archived)[1])
    sessions, other = store.open_database(db_url), store.open_database(db_url)
    raced = []

    def import_first_from_another_process(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO runs") and not raced:
            raced.append(import_archive_record(other, record))  # commits between our check and our INSERT

    event.listen(sessions.kw["bind"], "before_cursor_execute", import_first_from_another_process)
    assert import_archive_record(sessions, record) is False
    assert raced == [True]
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(store.RunRecord)) == 1
        assert s.scalar(select(func.count()).select_from(store.ModelRecord)) == 1
        run = s.get(store.RunRecord, record["run"]["id"])
        assert len(run.examples) == len(record["examples"]["rows"]) == run.n_examples
    assert import_archive_record(sessions, record) is False  # and a plain re-import is a no-op


@pytest.mark.slow
def test_export_import_results_leaderboard_round_trip(db_url, tmp_path):
    """The archived runs survive import -> export -> import into a second database of the same backend, and the
    reading commands work on it."""
    archive = ROOT / "results" / "archive"
    assert run_cli("import", str(archive), "--db", db_url).returncode == 0
    first = json.loads(run_cli("results", "--json", "--db", db_url).stdout)
    assert len(first) == len(archive_files([archive]))
    out = tmp_path / "exported"
    runs = [arg for record in first for arg in ("--run", record["run_id"])]  # one command, every run
    done = run_cli("export", *runs, "--out", str(out), "--db", db_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("wrote ") == len(first)
    (tmp_path / "again").mkdir()
    again = new_database("postgresql" if db_url.startswith("postgresql") else "sqlite", tmp_path / "again")
    assert run_cli("import", str(out), "--db", again).returncode == 0
    second = json.loads(run_cli("results", "--json", "--db", again).stdout)
    assert sorted(second, key=lambda r: r["run_id"]) == sorted(first, key=lambda r: r["run_id"])
    board = run_cli("leaderboard", "--db", again, "--out", str(tmp_path / "lb.md"))
    assert board.returncode == 0, board.stderr
    assert all(r["model"] in (tmp_path / "lb.md").read_text() for r in first)


def test_a_malformed_archive_is_one_error_line_and_imports_nothing(db_url, tmp_path):
    bad = tmp_path / "archive" / "broken.json"
    bad.parent.mkdir()
    record = json.loads(read_archive(archive_files([ROOT / "results" / "archive"])[0])[1])
    del record["run"]["finished_at"]  # a whole model, a run missing one field
    bad.write_text(json.dumps(record))
    result = run_cli("import", str(bad.parent), "--db", db_url)
    assert result.returncode != 0
    assert "archived run" in result.stderr and "broken.json" in result.stderr and "malformed" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    listing = run_cli("results", "--json", "--db", db_url).stdout
    assert json.loads(listing) == []
    assert count(db_url, "SELECT COUNT(*) FROM models") == 0  # nothing half-written: not even the model row
