"""Crash safety and concurrency: kill -9 loses at most the chunk in flight, resumes to identical numbers;
concurrent runs on one SQLite file all land; dead runs are listed and pruned."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

from tests.conftest import ROOT, SUBMISSIONS, run_cli

CONFIG = [
    "--n-examples",
    "32",
    "--batch-size",
    "8",
    "--attack",
    "apgd-ce",
    "--methods",
    "saliency",
    "--metrics",
    "sparseness,abpc",
    "--n-explain",
    "8",
    "--quiet",
]


def _state(db):
    with sqlite3.connect(db) as con:
        examples = con.execute(
            "SELECT idx, clean_pred, adv_pred, robust_correct, perturbation FROM examples ORDER BY idx"
        ).fetchall()
        scores = con.execute('SELECT method, metric, "values" FROM metrics ORDER BY 1, 2').fetchall()
    return examples, scores


def _count(db, sql):
    try:
        with sqlite3.connect(db) as con:
            return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_kill_9_then_resume_equals_an_uninterrupted_run(tmp_path, data_dir):
    model = str(SUBMISSIONS / "fmnist_pgd_linf.py")
    killed, clean = tmp_path / "killed.db", tmp_path / "clean.db"
    args = [sys.executable, "-m", "harness", "run", "--model", model, *CONFIG, "--data-dir", str(data_dir)]
    proc = subprocess.Popen(
        [*args, "--db", f"sqlite:///{killed}"],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while _count(killed, "SELECT COUNT(*) FROM examples") < 8 and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its sandboxed worker, mid-attack
    proc.wait()
    committed = _count(killed, "SELECT COUNT(*) FROM examples")
    assert 8 <= committed < 32 and committed % 8 == 0  # whole chunks only
    assert json.loads(run_cli("results", "--json", "--db", f"sqlite:///{killed}").stdout) == []
    assert " interrupted " in run_cli("runs", "--db", f"sqlite:///{killed}").stdout

    resumed = subprocess.run([*args, "--db", f"sqlite:///{killed}"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed and stored run" in resumed.stdout
    uninterrupted = subprocess.run([*args, "--db", f"sqlite:///{clean}"], cwd=ROOT, capture_output=True, text=True)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert _state(killed) == _state(clean)
    assert len(_state(killed)[0]) == 32 and len(_state(killed)[1]) == 2
    assert _count(killed, "SELECT COUNT(*) FROM artifacts") == 0


def test_four_concurrent_runs_on_one_database_all_land(tmp_path, data_dir):
    db = tmp_path / "shared.db"
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
                f"sqlite:///{db}",
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
    records = json.loads(run_cli("results", "--json", "--db", f"sqlite:///{db}").stdout)
    assert sorted(r["seed"] for r in records) == [0, 1, 2, 3]
    assert _count(db, "SELECT COUNT(*) FROM examples") == 32
    assert _count(db, "SELECT COUNT(*) FROM models") == 1


def test_prune_removes_dead_runs_only(tmp_path, data_dir):
    db = tmp_path / "p.db"
    ok = run_cli(
        "run",
        "--model",
        str(SUBMISSIONS / "fmnist_standard.py"),
        "--n-examples",
        "4",
        "--attack",
        "apgd-ce",
        "--metrics",
        "none",
        "--quiet",
        "--db",
        f"sqlite:///{db}",
        "--data-dir",
        str(data_dir),
    )
    assert ok.returncode == 0, ok.stderr
    with sqlite3.connect(db) as con:  # a run whose owner is long gone: pid 0 never matches a live process
        con.execute(
            "INSERT INTO runs SELECT 'deadrun00001', model_id, dataset, threat_model, eps, eps_text, "
            "n_examples, seed + 1, attack, 'other', 'running', NULL, NULL, config, provenance, timings, "
            "details, flags, NULL, created_at, NULL, owner_host, 0, 'x', heartbeat_at FROM runs"
        )
    listing = run_cli("runs", "--prune", "--db", f"sqlite:///{db}").stdout
    assert "deadrun00001  interrupted" in listing and "(pruned)" in listing
    remaining = run_cli("runs", "--db", f"sqlite:///{db}").stdout
    assert "deadrun00001" not in remaining and " complete " in remaining


def test_a_model_inserted_concurrently_is_reused_not_reported_as_damage(tmp_path):
    """Two new runs of one model: the second INSERT of the model row loses the race and reads the winner's row."""
    from sqlalchemy import event, func, select

    from harness import store

    url = f"sqlite:///{tmp_path / 'race.db'}"
    sessions, other = store.open_database(url), store.open_database(url)
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


def test_a_run_imported_concurrently_lands_once(tmp_path):
    """Two imports of one archive: the second INSERT of the run loses the race and counts the run as present."""
    from sqlalchemy import event, func, select

    from harness import store
    from harness.store.archive import import_archive_record

    archived = sorted((ROOT / "results" / "archive").glob("*.json"))[0]
    record = json.loads(archived.read_text())
    url = f"sqlite:///{tmp_path / 'race.db'}"
    sessions, other = store.open_database(url), store.open_database(url)
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


def test_a_malformed_archive_is_one_error_line_and_imports_nothing(tmp_path):
    bad = tmp_path / "archive" / "broken.json"
    bad.parent.mkdir()
    record = json.loads(sorted((ROOT / "results" / "archive").glob("*.json"))[0].read_text())
    del record["run"]["finished_at"]  # a whole model, a run missing one field
    bad.write_text(json.dumps(record))
    db = tmp_path / "r.db"
    result = run_cli("import", str(bad.parent), "--db", f"sqlite:///{db}")
    assert result.returncode != 0
    assert "archived run" in result.stderr and "broken.json" in result.stderr and "malformed" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    listing = run_cli("results", "--json", "--db", f"sqlite:///{db}").stdout
    assert json.loads(listing) == []
    assert _count(db, "SELECT COUNT(*) FROM models") == 0  # nothing half-written: not even the model row
