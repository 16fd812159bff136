"""Hostile submissions (issue 12): the parent decides, the worker only computes.

One case per way a submission tried to take over its run: set its own configuration, forge scores, outlive the run
or its parent, keep itself alive with fake heartbeats, exhaust the parent's memory, read root-only files, break
the leaderboard or the operator's terminal, mask its gradients, remember the clean images. Each runs the real CLI
against a database holding a completed run and checks the exit code, the one error line, that no traceback was
printed, that the completed runs are unchanged, and for escapes that nothing survives.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness import store
from tests.bad_inputs.conftest import (
    FAST,
    assert_clean_failure,
    marked_processes,
    rows,
    run_rows,
    wait_until,
    worker_dirs,
)
from tests.conftest import ROOT, SUBMISSIONS

IS_ROOT = os.geteuid() == 0


def _stored(db: Path, run_id: str | None = None) -> dict:
    """The newest (or the given) run as ``results --json`` would show it, straight from the database."""
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        if run_id is None:
            query = con.execute("SELECT * FROM runs WHERE id != 'existing0001' ORDER BY created_at DESC LIMIT 1")
        else:
            query = con.execute("SELECT * FROM runs WHERE id = ?", (run_id,))
        return dict(query.fetchone())


def _marker(case, name: str) -> str:
    marker = f"robint-marker-{uuid.uuid4().hex}"
    case.submission(name, MARKER=marker)
    return marker


# 1 and 2. the worker decides the run's configuration; forged scores ---------------------------------------


def test_a_patched_harness_can_neither_change_the_configuration_nor_forge_scores(case):
    proc = case.run(
        "--model",
        str(case.dir / "patches_harness.py"),
        *FAST[:6],
        *("--quiet", "--stall-timeout", "60", "--metrics", "sparseness", "--methods", "saliency"),
        *("--n-explain", "4", "--no-featurevis"),
    )
    line = assert_clean_failure(case, proc, "(expected_gradients, abpc), which was not requested", whole_db=False)
    assert "<script>" not in line
    run = _stored(case.path)  # the failed run: its attack results were stored before the forged score came
    assert (run["dataset"], run["threat_model"], run["eps"], run["eps_text"]) == ("fashion-mnist", "Linf", 0.1, "0.1")
    assert (run["n_examples"], run["attack"], run["status"]) == (8, "apgd-ce", "failed")
    config = json.loads(run["config"])
    assert (config["eps"], config["threat_model"], config["attack"]) == (0.1, "Linf", "apgd-ce")
    with sqlite3.connect(case.path) as con:
        assert con.execute("SELECT count(*) FROM examples WHERE run_id = ?", (run["id"],)).fetchone()[0] == 8
        assert con.execute("SELECT count(*) FROM metrics").fetchone()[0] == 0
    assert run_rows(case.path, "existing0001") == case.existing_before


def test_a_worker_that_swaps_the_attack_is_refused_before_any_robust_accuracy_is_stored(case):
    proc = case.run("--model", str(case.dir / "swaps_attack.py"), *FAST, "--no-featurevis")
    assert_clean_failure(case, proc, "AutoAttack log for attacks that were not requested (apgd-dlr)", whole_db=False)
    run = _stored(case.path)
    assert (run["attack"], run["status"], run["robust_acc"]) == ("apgd-ce", "failed", None)
    with sqlite3.connect(case.path) as con:
        assert con.execute("SELECT count(*) FROM examples WHERE run_id = ?", (run["id"],)).fetchone()[0] == 0
    assert run_rows(case.path, "existing0001") == case.existing_before


# 3 and 4. nothing outlives the run or its parent ------------------------------------------------------------


def test_nothing_the_submission_starts_outlives_the_run(case):
    marker = _marker(case, "spawns_processes")
    proc = subprocess.Popen(
        case.command("--model", str(case.dir / "spawns_processes.py"), *FAST),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=300)
    assert_clean_failure(case, subprocess.CompletedProcess(proc.args, proc.returncode, out, err), "started a child")
    assert wait_until(lambda: not marked_processes(marker)), "a process the submission started survived the run"
    assert worker_dirs(proc.pid) == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_harness_takes_its_worker_and_the_workers_children_along(case, sig):
    marker = _marker(case, "slow_load")
    proc = subprocess.Popen(
        case.command("--model", str(case.dir / "slow_load.py"), *FAST),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_until(lambda: marked_processes(marker), timeout=120), "the submission never started"
        assert worker_dirs(proc.pid)
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert wait_until(lambda: not marked_processes(marker)), "the worker outlived the killed harness"
        assert wait_until(lambda: not worker_dirs(proc.pid)), "the worker's temporary directory was left behind"
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in marked_processes(marker):
            os.kill(pid, signal.SIGKILL)
    assert rows(case.path) == case.before


# 5. fake heartbeats -----------------------------------------------------------------------------------------


def test_fake_heartbeats_do_not_extend_a_steps_budget(case):
    proc = case.run("--model", str(case.dir / "fake_heartbeats.py"), *FAST[:-2], "--stall-timeout", "4", timeout=120)
    assert_clean_failure(case, proc, "'load' step made no verifiable progress within its budget of 4 s")


# 6. the parent's memory is bounded, and malformed lines are one clean error ---------------------------------

_RSS = (
    "import atexit, os, resource, sys; atexit.register(lambda: open(os.environ['RSS_OUT'], 'w')"
    ".write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))); sys.argv = ['robint-bench', *sys.argv[1:]]; "
    "from harness.cli import main; main()"
)


def test_a_flood_without_newline_is_refused_and_the_parents_memory_stays_bounded(case, tmp_path):
    peaks = {}
    for mode in ("quiet", "flood"):  # the parent's peak RSS when the worker fails at once, then when it floods
        case.submission("floods_protocol", MODE=mode)  # flood: 1.5 GiB on the protocol pipe
        rss = tmp_path / f"rss_{mode}"
        proc = case.run(
            "--model",
            str(case.dir / "floods_protocol.py"),
            *FAST,
            prefix=[sys.executable, "-c", _RSS],
            env={"RSS_OUT": str(rss)},
            timeout=120,
        )
        peaks[mode] = int(rss.read_text())  # KiB
    assert_clean_failure(case, proc, "not a protocol message", "a line longer than 1048576 bytes")
    assert peaks["flood"] - peaks["quiet"] < 256 * 1024, f"the parent buffered the flood (peak RSS in KiB: {peaks})"


def test_a_deeply_nested_line_is_one_clean_error(case):
    case.submission("floods_protocol", MODE="nested")
    proc = case.run("--model", str(case.dir / "floods_protocol.py"), *FAST)
    line = assert_clean_failure(case, proc, "not a protocol message")
    assert "RecursionError" in line and "unexpected" not in line


# 7. root-only files -----------------------------------------------------------------------------------------


def test_root_only_files_are_out_of_reach(case):
    proc = case.run("--model", str(case.dir / "reads_root_only.py"), *FAST)
    assert_clean_failure(case, proc, "PermissionError", "runs as a user of its own")
    assert "stole" not in proc.stdout + proc.stderr and "root:" not in proc.stdout + proc.stderr


@pytest.mark.skipif(not IS_ROOT, reason="the worker runs as a user of its own only when robint-bench runs as root")
def test_a_submission_or_weights_file_others_cannot_read_is_one_clean_error(case):
    submission = case.dir / "good_linear.py"
    submission.chmod(0o600)
    proc = case.run_here("--model", str(submission), *FAST)  # refused by the parent, before any worker starts
    assert_clean_failure(case, proc, f"cannot read {submission.resolve()}", "chmod -R o+rX")
    shutil.copy(SUBMISSIONS / "fmnist_standard.pt", case.dir / "remembers_clean.pt")
    (case.dir / "remembers_clean.pt").chmod(0o600)
    proc = case.run_here("--model", str(case.dir / "remembers_clean.py"), *FAST)
    assert_clean_failure(case, proc, f"cannot read {(case.dir / 'remembers_clean.pt').resolve()}")


# 8 and 9. METADATA cannot break the leaderboard, the export or the terminal ---------------------------------


def test_hostile_metadata_is_refused(case):
    """A name with a newline, a heading, pipes, HTML and mathtext (the other variants, training method 7, a 1 MB
    name, ``../../baseline``, are refused by the same schema: test_schemas.py)."""
    name = "evil\n# Best | 99% <script>alert(1)</script> $\\foo{$"
    case.submission("bad_metadata", METADATA={"name": name, "dataset": "fashion-mnist", "architecture": "x"})
    line = assert_clean_failure(case, case.run("--model", str(case.dir / "bad_metadata.py"), *FAST), "METADATA name")
    assert "\\x0a# Best" in line  # one line: the newline is shown escaped


def _insert_run(db: Path, run_id: str, name: str, info: dict) -> None:
    sessions = store.open_database(f"sqlite:///{db}")
    with store.transaction(sessions) as s:
        model = store.get_or_create_model(
            s, name=name, source=f"{run_id}.py", file_sha256=run_id.ljust(64, "0"), weights_sha256=None, info=info
        )
        flag = {"code": "x\x1b[31m", "message": "<img src=x onerror=alert(1)> [click](javascript:alert(1))"}
        s.add(
            store.RunRecord(
                id=run_id,
                model_id=model.id,
                dataset="fashion-mnist",
                threat_model="Linf",
                eps=0.1,
                eps_text="0.1",
                n_examples=1,
                seed=0,
                attack="standard",
                config_key=f"k{run_id}",
                status=store.COMPLETE,
                clean_acc=1.0,
                robust_acc=0.0,
                config={},
                provenance={},
                flags=[flag],
                examples=[  # its numbers are those of its row: the board shows it (harness.store.verify)
                    store.ExampleRecord(
                        idx=0,
                        label=9,
                        clean_pred=9,
                        adv_pred=3,
                        clean_correct=True,
                        robust_correct=False,
                        perturbation=0.1,
                    )
                ],
            )
        )
    sessions.kw["bind"].dispose()


def test_malformed_stored_rows_do_not_break_the_leaderboard(case, tmp_path):
    _insert_run(case.path, "aaaaaaaaaaaa", "$\\foo{$", {"training": {"method": 7}})
    _insert_run(case.path, "bbbbbbbbbbbb", "evil\n# Heading <script>alert(1)</script> | x", {"training": "a|b\n## h"})
    out = tmp_path / "leaderboard.md"
    proc = case.cli("leaderboard", "--db", f"sqlite:///{case.path}", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "<script>" not in text and "<img" not in text and not re.search(r"(?<!\\)\]\(javascript", text)
    assert "\n# Heading" not in text and "\n## h" not in text
    table = [line for line in text.splitlines() if line.startswith("| ") and "fashion" not in line]
    assert len({len(re.findall(r"(?<!\\)\|", line)) for line in table[:4]}) == 1  # no cell added a column
    assert "\\$\\\\foo{\\$" in text


def test_export_stays_inside_out_and_never_overwrites(case, tmp_path):
    _insert_run(case.path, "cccccccccccc", "../../baseline", {})
    out = tmp_path / "deep" / "out"
    baseline = tmp_path / "baseline-cccccccccccc.json.gz"
    export = ("export", "--run", "cccccccccccc", "--db", f"sqlite:///{case.path}", "--out", str(out))
    first = case.cli(*export)
    assert first.returncode == 0, first.stderr
    written = [p for p in tmp_path.rglob("*.json*")]
    assert len(written) == 1 and out in written[0].parents and not baseline.exists()
    assert written[0].name.endswith(".json.gz")
    before = written[0].read_bytes()
    again = case.cli(*export)
    assert again.returncode == 2 and "exists" in again.stderr and "--force" in again.stderr
    assert written[0].read_bytes() == before
    assert case.cli(*export, "--force").returncode == 0


def test_error_lines_show_escape_sequences_instead_of_sending_them(case):
    proc = case.run("--model", str(case.dir / "ansi_error.py"), *FAST)
    line = assert_clean_failure(case, proc, "RuntimeError: \\x1b[2K")  # shown, not sent (first line only)
    assert "robust accuracy" not in line


# 10. masking signals ----------------------------------------------------------------------------------------


def test_masked_gradients_and_autoattacks_randomness_warning_are_flagged(case):
    proc = case.run_here("--model", str(case.dir / "masks_gradients.py"), *FAST, "--trusted")  # no sandbox needed
    assert proc.returncode == 0, proc.stderr
    flags = {f["code"]: f["message"] for f in json.loads(_stored(case.path)["flags"])}
    assert "gradient masking suspected: logits reach" in flags["gradient-masking-suspected"]
    assert "AutoAttack's own check found the model randomised" in flags["randomised"]
    assert run_rows(case.path, "existing0001") == case.existing_before


# 11. a stateful cheat ---------------------------------------------------------------------------------------


def test_a_model_that_remembers_the_clean_images_is_caught(case):
    shutil.copy(SUBMISSIONS / "fmnist_standard.pt", case.dir / "remembers_clean.pt")
    proc = case.run("--model", str(case.dir / "remembers_clean.py"), *FAST)
    assert proc.returncode == 0, proc.stderr
    run = _stored(case.path)
    flags = {f["code"] for f in json.loads(run["flags"])}
    assert "stateful-model" in flags
    # the shipped standard weights have 0% robust accuracy at Linf 0.1 (leaderboard.md, n=1000); the cheat claims
    # its clean accuracy, the fresh worker's answers bring the stored number back to 0
    assert run["clean_acc"] > 0.8 and run["robust_acc"] == 0.0


# minor: --db a directory, a read-only filesystem ------------------------------------------------------------


def test_a_directory_as_db_is_one_clean_error(case, tmp_path):
    proc = case.cli("results", "--db", f"sqlite:///{tmp_path}")
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: --db {tmp_path} is a directory, not a database file -- pass e.g. sqlite:///results/robint.db"
    ]


@pytest.mark.skipif(not IS_ROOT or shutil.which("unshare") is None, reason="needs root for a read-only mount")
def test_results_and_leaderboard_read_a_healthy_database_on_a_read_only_filesystem(case, tmp_path):
    results, out = case.path.parent, tmp_path / "board"
    out.mkdir()
    for suffix in ("-wal", "-shm"):
        Path(f"{case.path}{suffix}").unlink(missing_ok=True)
    script = (
        f"mount --bind {results} {results} && mount -o remount,ro,bind {results} && "
        f"{sys.executable} -m harness results --db sqlite:///{case.path} && "
        f"{sys.executable} -m harness leaderboard --db sqlite:///{case.path} --out {out / 'lb.md'}"
    )
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if "mount" in proc.stderr and proc.returncode != 0 and "existing" not in proc.stdout:
        pytest.skip(f"read-only bind mounts are not permitted here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert "existing" in proc.stdout and (out / "lb.md").is_file()
