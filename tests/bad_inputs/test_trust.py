"""Issue 25: no submission, archive or stored row can put a false number on the board.

One case per problem found against main, numbered as in the issue: each ran the real CLI and got a false number
stored, shown or reused, a secret read, a resource escaped or the board broken. Each case checks the exit code, the
one error line (or, where the run now completes, the true numbers and the flag), and that the completed runs are
unchanged. Cases that attack (the fresh worker's comparison, a covert channel, the grid) or need the sandbox (its
files and limits, the worker's environment and output) run the CLI in a subprocess, whose workers keep to one thread
(on a busy 2-core machine an attack in the test process, with torch's two threads, took 4-9 minutes instead of under
one); the others call it in this process (``--trusted`` where the sandbox plays no part: the board, imports, names).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import uuid
import zlib
from pathlib import Path

import pytest
import torch

from harness.store.archive import MAX_ARCHIVE_BYTES, read_archive
from tests.bad_inputs.conftest import (
    FAST,
    assert_clean_failure,
    completed,
    marked_processes,
    rows,
    run_rows,
    wait_until,
    worker_dirs,
)
from tests.bad_inputs.test_hostile import _stored
from tests.conftest import ROOT, SUBMISSIONS

ARCHIVE = ROOT / "results" / "archive"


def _flags(run: dict) -> set[str]:
    return {f["code"] for f in json.loads(run["flags"])}


def _unchanged(case) -> None:
    assert run_rows(case.path, "existing0001") == case.existing_before


# 1. a tie tolerance under the model's control -------------------------------------------------------------------


def test_1_scaled_logits_cannot_turn_disagreements_into_ties(case):
    shutil.copy(SUBMISSIONS / "fmnist_standard.pt", case.dir / "scales_off_grid.pt")
    proc = case.run("--model", str(case.dir / "scales_off_grid.py"), *FAST)
    assert proc.returncode == 0, proc.stderr
    run = _stored(case.path)
    # the standard weights have 0% robust accuracy at Linf 0.1; main stored the cheat's answers, unflagged
    assert "stateful-model" in _flags(run) and run["robust_acc"] == 0.0
    _unchanged(case)


# 2. a covert channel between the attacking and the fresh worker ---------------------------------------------------


def test_2_no_channel_joins_the_attacking_and_the_fresh_worker(case):
    shutil.copy(SUBMISSIONS / "fmnist_standard.pt", case.dir / "lock_channel.pt")
    proc = case.run("--model", str(case.dir / "lock_channel.py"), *FAST)
    assert proc.returncode == 0, proc.stderr
    run = _stored(case.path)
    # main ran the fresh worker beside the attacking one, on the same file: it read the locks and agreed with it
    assert "stateful-model" in _flags(run) and run["robust_acc"] == 0.0
    _unchanged(case)


# 3. the test set within the workers' reach ---------------------------------------------------------------------


def test_3_no_data_database_archive_or_home_is_within_a_workers_reach(case):
    targets = {
        "the data directory": str(case.data_dir),
        "the results database": str(case.path),
        "the archive": str(ARCHIVE),
        "the home directory": str(Path.home()),
    }
    if Path("/usr/share/datasets/fashion-mnist").is_dir():
        targets["the system's data sets"] = "/usr/share/datasets/fashion-mnist"
    case.submission("reads_everything", TARGETS=targets)
    proc = case.run("--model", str(case.dir / "reads_everything.py"), *FAST)
    assert_clean_failure(case, proc, f"could read none of {len(targets)} paths")


# 4. off-grid switching ---------------------------------------------------------------------------------------------


def test_4_a_model_that_answers_differently_on_the_grid_is_flagged_and_not_robust_there(case):
    both = {
        **{f"standard.{k}": v for k, v in torch.load(SUBMISSIONS / "fmnist_standard.pt").items()},
        **{f"pgd.{k}": v for k, v in torch.load(SUBMISSIONS / "fmnist_pgd_linf.pt").items()},
    }
    torch.save(both, case.dir / "switches_off_grid.pt")
    sixteen = [*FAST[:1], "16", *FAST[2:3], "16", *FAST[4:]]  # 16 examples: enough flips for the flag's sign test
    proc = case.run("--model", str(case.dir / "switches_off_grid.py"), *sixteen)
    assert proc.returncode == 0, proc.stderr
    run = _stored(case.path)
    # main stored the PGD-AT model's robustness (AutoAttack searches off the grid), unflagged
    assert "grid-inconsistent" in _flags(run) and run["robust_acc"] <= 0.25
    _unchanged(case)


# 5. clean predictions taken on trust -------------------------------------------------------------------------------


def test_5_clean_accuracy_is_the_fresh_workers(case):
    proc = case.run("--model", str(case.dir / "labels_from_worker.py"), *FAST)
    assert proc.returncode == 0, proc.stderr
    run = _stored(case.path)
    # its own layer answers class 0, which none of the first 8 test images is; main stored the looked-up labels
    assert run["clean_acc"] == 0.0 and "stateful-model" in _flags(run)
    _unchanged(case)


# 6. forged archives: stored as measured, reused by run --------------------------------------------------------------


def test_6_forged_archives_are_refused_and_a_forged_row_is_never_reused(case, tmp_path):
    good = ("--model", str(case.dir / "good_linear.py"), *FAST, "--trusted")
    assert case.run_here(*good).returncode == 0
    run_id = _stored(case.path)["id"]
    exported = case.cli("export", "--run", run_id, "--db", f"sqlite:///{case.path}", "--out", str(tmp_path / "x"))
    assert exported.returncode == 0, exported.stderr
    record = json.loads(read_archive(next((tmp_path / "x").glob("*.json.gz")))[1])
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "a_forged.json").write_text(json.dumps({**record, "run": {**record["run"], "robust_acc": 0.95}}))
    lookalike = json.loads(read_archive(ARCHIVE / "fmnist_trades_linf-02fce4e2265f.json.gz")[1])
    lookalike["model"]["name"] = lookalike["model"]["info"]["name"] = "fmnist_trades_l\u0456nf"  # a Cyrillic i
    lookalike["run"]["robust_acc"] = 0.99
    (archive / "b_lookalike.json").write_text(json.dumps(lookalike))
    shutil.copy(ARCHIVE / "fmnist_pgd_linf-7b056f54c9ff.json.gz", archive / "c_good.json.gz")
    for figured in (run_id, "7b056f54c9ff"):  # figures beside the archive, of the forged run and of the good one
        (tmp_path / "runs" / figured).mkdir(parents=True)
        (tmp_path / "runs" / figured / "attributions.png").write_bytes(b"png")
    (tmp_path / "elsewhere").mkdir()
    imported = case.cli("import", str(archive), "--db", f"sqlite:///{tmp_path / 'elsewhere' / 'fresh.db'}")
    lines = imported.stderr.strip().splitlines()
    assert imported.returncode == 2 and len(lines) == 2, imported.stderr
    assert [d.name for d in (tmp_path / "elsewhere" / "runs").iterdir()] == ["7b056f54c9ff"]  # a refused run's: none
    assert "a_forged.json was not imported: its numbers are not those of its per-example rows" in lines[0]
    assert "b_lookalike.json was not imported: model name 'fmnist_trades_l\\u0456nf'" in lines[1]
    assert "imported 1 new run(s) from 3 file(s)" in imported.stdout  # the good file after the bad ones
    # a forged row already in a database (as main's import wrote it) is never reused
    with sqlite3.connect(case.path) as con:
        con.execute("UPDATE runs SET robust_acc = 0.95 WHERE id = ?", (run_id,))
    again = case.run_here(*good)
    assert again.returncode == 0 and "reused" not in again.stdout and "robust accuracy  0.0% " in again.stdout
    _unchanged(case)


def test_6_a_compressed_archive_cannot_fill_the_memory_and_a_broken_one_is_one_error(case, tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip stream
    with open(archive / "a_bomb.json.gz", "wb") as f:  # 257 KiB that decompress to 257 MiB of spaces
        for _ in range((MAX_ARCHIVE_BYTES >> 20) + 1):
            f.write(bomb.compress(b" " * (1 << 20)))
        f.write(bomb.flush())
    good = ARCHIVE / "fmnist_pgd_linf-7b056f54c9ff.json.gz"
    (archive / "b_truncated.json.gz").write_bytes(good.read_bytes()[:-100])
    (archive / "c_not_gzip.json.gz").write_bytes(read_archive(good)[1])
    shutil.copy(good, archive / "d_good.json.gz")
    imported = case.cli("import", str(archive), "--db", f"sqlite:///{tmp_path / 'fresh.db'}")
    lines = imported.stderr.strip().splitlines()
    assert imported.returncode == 2 and len(lines) == 3, imported.stderr
    assert "a_bomb.json.gz was not imported: it decompresses to more than 256 MiB" in lines[0]
    assert "b_truncated.json.gz was not imported: it is not a complete gzip file" in lines[1]
    assert "c_not_gzip.json.gz was not imported: it is not a complete gzip file" in lines[2]
    assert "imported 1 new run(s) from 4 file(s)" in imported.stdout


# 7. name impersonation ---------------------------------------------------------------------------------------------


def test_7_a_name_another_model_holds_is_refused_and_never_replaces_its_row(case, tmp_path):
    db = f"sqlite:///{case.path}"
    assert case.cli("import", str(ARCHIVE / "fmnist_pgd_linf-7b056f54c9ff.json.gz"), "--db", db).returncode == 0
    case.before, case.completed_before = rows(case.path), completed(case.path)  # the imported run is the baseline
    before = rows_of(case.path)
    metadata = {"name": "fmnist_pgd_linf", "dataset": "fashion-mnist", "architecture": "linear"}
    case.submission("good_linear", METADATA=metadata)
    proc = case.run_here("--model", str(case.dir / "good_linear.py"), *FAST, "--trusted")
    assert_clean_failure(case, proc, "the name 'fmnist_pgd_linf' belongs to another model", "a name of its own")
    assert rows_of(case.path) == before
    board = case.cli("leaderboard", "--db", db, "--out", str(tmp_path / "lb.md"))
    assert (
        board.returncode == 0
        and "| fmnist_pgd_linf (imported) | 86.0 | 76.4 [73.7, 78.9] | 1000 |" in (tmp_path / "lb.md").read_text()
    )


def rows_of(db: Path) -> list:
    with sqlite3.connect(db) as con:
        return sorted(con.execute("SELECT id, robust_acc FROM runs").fetchall())


# 8. undeclared weights outside the identity --------------------------------------------------------------------------


def test_8_a_file_metadata_does_not_declare_cannot_be_opened(case):
    shutil.copy(SUBMISSIONS / "fmnist_pgd_linf.pt", case.dir / "secret_weights.pt")
    proc = case.run_here("--model", str(case.dir / "undeclared_weights.py"), *FAST, "--trusted")
    assert_clean_failure(case, proc, "FileNotFoundError", "secret_weights.pt", "declare the file")


# 9. forks escape the memory limit; no process limit -------------------------------------------------------------------


@pytest.mark.parametrize("megabytes", [0, 64], ids=["fork-bomb", "forked-memory"])
def test_9_forks_are_bounded_per_worker_and_end_with_the_run(case, megabytes):
    marker = f"robint-marker-{uuid.uuid4().hex}"
    case.submission("fork_bomb", MEGABYTES=megabytes, MARKER=marker)
    proc = case.run("--model", str(case.dir / "fork_bomb.py"), *FAST, "--process-limit", "16", "--memory-limit", "4G")
    line = assert_clean_failure(case, proc, "then fork failed: Resource temporarily unavailable")
    started = int(line.split("started ")[1].split(" ")[0])
    assert started < 16, line  # at most 16 processes and threads in the worker: what it holds is bounded
    assert wait_until(lambda: not marked_processes(marker)), "a child outlived the run"


# 10. secrets reach the worker ----------------------------------------------------------------------------------------


def test_10_the_worker_gets_no_secret_of_the_environment_or_the_database(case, tmp_path):
    token = f"trustdb-{uuid.uuid4().hex}"
    db = tmp_path / token / "robint.db"
    db.parent.mkdir()
    shutil.copy(case.path, db)
    case.submission("reads_secrets", TOKEN_SHA256=hashlib.sha256(token.encode()).hexdigest())
    env = {"NVIDIA_API_KEY": "hunter2-SECRET-nv", "CUDA_API_TOKEN": "hunter2-SECRET-cu"}
    proc = case.run("--model", str(case.dir / "reads_secrets.py"), *FAST, env=env, db_url=f"sqlite:///{db}")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: "), proc.stderr
    assert "found nothing" in proc.stderr and "hunter2" not in proc.stderr


# 11. one stored row breaks the board ---------------------------------------------------------------------------------


def test_11_malformed_rows_are_refused_at_import_and_left_off_the_board(case, tmp_path):
    standard = json.loads(read_archive(ARCHIVE / "fmnist_standard-8db3ece56b19.json.gz")[1])
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "nan.json").write_text(json.dumps({**standard, "run": {**standard["run"], "robust_acc": float("nan")}}))
    (archive / "many.json").write_text(json.dumps({**standard, "run": {**standard["run"], "n_examples": "many"}}))
    db = f"sqlite:///{case.path}"
    imported = case.cli("import", str(archive), "--db", db)
    lines = imported.stderr.strip().splitlines()
    assert imported.returncode == 2 and len(lines) == 2, imported.stderr
    assert "many.json was not imported: run n_examples must be an integer" in lines[0]
    assert "nan.json was not imported: not JSON: the non-finite constant NaN is not allowed" in lines[1]
    # the same rows written straight into the database (as main's import stored them) do not break the board
    with sqlite3.connect(case.path) as con:
        columns = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
        row = dict(zip(columns, con.execute("SELECT * FROM runs WHERE id = 'existing0001'").fetchone(), strict=True))
        for run_id, change in (("nanrun000001", {"robust_acc": float("nan")}), ("manyrun00001", {"n_examples": "x"})):
            values = {**row, "id": run_id, "config_key": run_id, **change}
            con.execute(f"INSERT INTO runs VALUES ({', '.join('?' * len(columns))})", [values[c] for c in columns])
    board = case.cli("leaderboard", "--db", db, "--out", str(tmp_path / "lb.md"))
    assert board.returncode == 0, board.stderr
    warnings = board.stderr.strip().splitlines()
    assert len(warnings) == 2 and all(w.startswith("warning: run ") for w in warnings), board.stderr
    assert "existing" in (tmp_path / "lb.md").read_text() and "nanrun" not in (tmp_path / "lb.md").read_text()
    assert case.cli("results", "--db", db, "--json").returncode == 0


# 12. unbounded, unescaped output ------------------------------------------------------------------------------------


def test_12_worker_output_is_bounded_and_escaped(case):
    proc = case.run("--model", str(case.dir / "floods_stderr.py"), *FAST[:-3], "--stall-timeout", "60")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("error: load_model()")
    assert len(proc.stderr.encode()) < (1 << 20) + 8192, len(proc.stderr)  # 20 MiB written, 1 MiB shown
    assert "more bytes to its stderr; not shown)" in proc.stderr
    for raw in ("\r", "\u202e", "\u2028"):
        assert raw not in proc.stderr
    assert "progress 10%\\x0dstored run feedbeef0001: robust 99.00%\\u202e\\u2028spoofed" in proc.stderr
    assert run_rows(case.path, "existing0001") == case.existing_before


# 13. import and export edges ----------------------------------------------------------------------------------------


def test_13_links_percentages_and_nesting_at_the_edges_are_refused_by_file(case, tmp_path):
    db = f"sqlite:///{case.path}"
    tree = tmp_path / "model_info" / "cifar10" / "Linf"
    tree.mkdir(parents=True)
    good = {"name": "Good", "link": "https://x.org", "eps": "8/255", "clean_acc": "80.00", "autoattack_acc": "50.00"}
    for name, change in (
        ("Huge2024", {"clean_acc": "1e308"}),
        ("Negative2024", {"autoattack_acc": "-50"}),
        ("Above2024", {"autoattack_acc": "250"}),
    ):
        (tree / f"{name}.json").write_text(json.dumps({**good, **change}))
    (tree / "Deep2024.json").write_text("[" * 100_000 + "]" * 100_000)
    (tree / "Zgood2024.json").write_text(json.dumps(good))
    proc = case.cli("import-robustbench", str(tmp_path / "model_info"), "--db", db)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 4, proc.stderr
    assert "Above2024.json: autoattack_acc '250' is not a percentage in [0, 100]" in lines[0]
    assert "Deep2024.json is not usable JSON: not JSON (nested too deeply: RecursionError)" in lines[1]
    assert "Huge2024.json: clean_acc '1e308' is not a percentage" in lines[2]
    assert "Negative2024.json: autoattack_acc '-50'" in lines[3]
    assert "imported 1 new reported entry" in proc.stdout
    # export: a METADATA link that is not http(s) is refused, naming it
    metadata = {
        "name": "linked",
        "dataset": "fashion-mnist",
        "architecture": "linear",
        "link": "javascript:alert(1)",
        "paper": "p",
        "authors": "a",
        "venue": "v",
        "additional_data": False,
        "reported_acc": None,
        "number_forward_passes": 1,
    }
    case.submission("good_linear", METADATA=metadata)
    assert case.run_here("--model", str(case.dir / "good_linear.py"), *FAST, "--trusted").returncode == 0
    run_id = _stored(case.path)["id"]
    out = tmp_path / "rb"
    exported = case.cli("export", "--run", run_id, "--format", "robustbench", "--db", db, "--out", str(out))
    assert exported.returncode == 2 and "link must be an http(s) URL, not 'javascript:alert(1)'" in exported.stderr
    assert not out.exists() or not any(out.rglob("*.json"))
    _unchanged(case)


@pytest.fixture(autouse=True)
def _no_leftovers(case):
    """Every case leaves no worker directory of this process behind (runs in this process make them too)."""
    yield
    assert wait_until(lambda: not worker_dirs(os.getpid()))
