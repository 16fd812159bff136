"""The bad-input corpus: each case ends with one clear error line, a non-zero exit, and the database unchanged.

Every case runs the real CLI against a database that already holds a completed run; the database's rows are
compared before and after. Cases that test the sandbox (or need a process of their own: limits, mounts) run the CLI
in a subprocess with the submission in the sandboxed worker (the default). Cases whose failure comes from the
parent or from the submission contract call the same entry point in this process (``Case.run_here``), the
submission contract cases with ``--trusted``; two of them also run end to end through the sandbox, so the
worker's side of each error path is covered too. The fixtures
and helpers are in conftest.py; the hostile submissions of issue 12 (a worker that lies, floods, forks, outlives
its parent) are in test_hostile.py.
"""

from __future__ import annotations

import os
import pickle
import resource
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from harness.worker import forkserver
from harness.worker.sandbox import landlock_abi
from tests.bad_inputs.conftest import FAST, rows
from tests.bad_inputs.conftest import assert_clean_failure as _assert_clean_failure
from tests.conftest import ROOT

SUBMISSION_CASES = [
    ("syntax_error", ["syntax error at line 6"]),
    ("no_metadata", ["defines no METADATA"]),
    ("no_load_model", ["defines no load_model()"]),
    ("wrong_return_type", ["returned dict, not a torch.nn.Module"]),
    ("wrong_output_shape", ["contract check 'output shape'", "(8, 5)", "expected (8, 10)"]),
    ("nan_outputs", ["contract check 'finite outputs'"]),
    ("softmax_outputs", ["contract check 'logits'", "drop the final softmax"]),
    ("randomised", ["contract check 'deterministic'", "--attack rand"]),
    ("train_mode_batchnorm", ["contract check 'eval mode'"]),
    ("batch_dependent", ["contract check 'batch independence'"]),
    ("grad_in_forward", ["contract check 'no gradients in forward'"]),
]


@pytest.mark.parametrize(("name", "fragments"), SUBMISSION_CASES, ids=[c[0] for c in SUBMISSION_CASES])
def test_broken_submission(case, name, fragments):
    proc = case.run_here("--model", str(case.dir / f"{name}.py"), *FAST, "--trusted")
    _assert_clean_failure(case, proc, *fragments)


@pytest.mark.parametrize("name", ["syntax_error", "batch_dependent"])
def test_broken_submission_in_the_sandbox(case, name):
    """A load failure and a contract failure, end to end: the sandboxed worker reports them as the trusted path."""
    fragments = dict(SUBMISSION_CASES)[name]
    _assert_clean_failure(case, case.run("--model", str(case.dir / f"{name}.py"), *FAST), *fragments)


def test_sleeps_forever_is_stopped_by_the_stall_timeout(case):
    proc = case.run("--model", str(case.dir / "sleeps_forever.py"), *FAST[:-2], "--stall-timeout", "5")
    _assert_clean_failure(case, proc, "made no progress for 5 s", "--stall-timeout")


def test_a_case_past_its_timeout_is_stopped_and_its_run_marked_failed(case):
    """The in-process command keeps ``Case.run``'s timeout, as a subprocess would: a model that never answers, with
    the stall timeout out of reach, is stopped after 4 s, its worker with it, and the database is unchanged."""
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        case.run("--model", str(case.dir / "sleeps_forever.py"), *FAST[:-2], "--stall-timeout", "600", timeout=4)
    assert time.monotonic() - started < 60
    assert rows(case.path) == case.before
    deadline = time.monotonic() + 10
    while _children(os.getpid()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _children(os.getpid()) == []


def _children(pid: int) -> list[int]:
    """The live (not zombie) worker processes (``python -I -m harness.worker``) that are children of ``pid`` or of
    its fork servers (harness.worker.forkserver; the servers themselves are not workers)."""
    servers = set(forkserver.server_pids())
    parents = {str(pid), *map(str, servers)}
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            command = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        parent, state = fields.get("PPid", "").strip(), fields.get("State", "")
        me = int(status.parent.name)
        if parent in parents and me not in servers and not state.startswith("Z") and b"harness.worker" in command:
            found.append(me)
    return found


def test_unbounded_allocation_hits_the_memory_limit(case):
    # 4G, not less: with OMP_NUM_THREADS=1 (as under pytest-xdist) torch's native start-up needs more than 3G of
    # address space, and a 3G worker crashes (SIGSEGV) even with a good model
    proc = case.run("--model", str(case.dir / "allocates_without_bound.py"), *FAST, "--memory-limit", "4G")
    _assert_clean_failure(case, proc, "ran out of memory", "--memory-limit")


def test_environment_secret_is_not_visible(case):
    secret = "hunter2-robint-secret"
    proc = case.run("--model", str(case.dir / "reads_env_secret.py"), *FAST, env={"ROBINT_TEST_SECRET": secret})
    _assert_clean_failure(case, proc, "KeyError: 'ROBINT_TEST_SECRET'")
    assert secret not in proc.stdout + proc.stderr


@pytest.mark.skipif(landlock_abi() is None, reason="this kernel has no Landlock: no file isolation to test")
def test_parent_environment_is_not_readable(case):
    secret = "hunter2-robint-secret"
    proc = case.run("--model", str(case.dir / "reads_parent_environ.py"), *FAST, env={"ROBINT_TEST_SECRET": secret})
    _assert_clean_failure(case, proc, "PermissionError", "sandbox")
    assert secret not in proc.stdout + proc.stderr


def test_the_fork_server_is_out_of_a_submissions_reach(case):
    """The server its worker was forked from (harness.worker.forkserver) can be neither signalled nor read: the run
    fails with the submission's own error, and the server still forks the next worker."""
    from harness.worker import forkserver

    proc = case.run("--model", str(case.dir / "reaches_fork_server.py"), *FAST)
    line = _assert_clean_failure(case, proc, "the fork server is out of reach")
    print(line)
    assert "reached" not in line
    servers = forkserver.server_pids()
    assert servers  # the worker was forked by a server of this process, which is still alive
    again = case.run("--model", str(case.dir / "reaches_fork_server.py"), *FAST)
    _assert_clean_failure(case, again, "the fork server is out of reach")
    assert set(servers) <= set(forkserver.server_pids())  # the same servers, not replacements of killed ones


@pytest.mark.skipif(landlock_abi() is None, reason="this kernel has no Landlock: no file isolation to test")
def test_parent_files_are_not_readable(case):
    case.submission("reads_parent_files", TARGET=str(case.path))
    proc = case.run("--model", str(case.dir / "reads_parent_files.py"), *FAST)
    line = _assert_clean_failure(case, proc)
    # refused by Landlock, or (as root, the database under a directory nobody may enter) not even visible
    assert ("PermissionError" in line and "sandbox" in line) or "FileNotFoundError" in line, line
    assert "stole" not in line


def test_network_socket_is_refused(case):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(20)
    accepted: list[bytes] = []

    def accept() -> None:
        try:
            conn, _ = listener.accept()
            accepted.append(conn.recv(100))
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    case.submission("opens_socket", PORT=listener.getsockname()[1])
    proc = case.run("--model", str(case.dir / "opens_socket.py"), *FAST)
    listener.close()
    thread.join(5)
    _assert_clean_failure(case, proc, "PermissionError", "network")
    assert accepted == []


def test_corrupt_weights(case):
    (case.dir / "corrupt_weights.pt").write_bytes(bytes(range(256)) * 8)
    proc = case.run_here("--model", str(case.dir / "corrupt_weights.py"), *FAST, "--trusted")
    _assert_clean_failure(case, proc, "corrupt_weights.pt is corrupt or not a torch/safetensors file")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch /tmp/robint-pwned",))


def test_weights_needing_arbitrary_unpickling(case):
    torch.save(
        {"fc.weight": torch.zeros(10, 784), "payload": _RunsCode()},
        case.dir / "evil_pickle_weights.pt",
        pickle_protocol=pickle.HIGHEST_PROTOCOL,
    )
    proc = case.run_here("--model", str(case.dir / "evil_pickle_weights.py"), *FAST, "--trusted")
    _assert_clean_failure(case, proc, "needs arbitrary code to unpickle and was refused")
    assert not Path("/tmp/robint-pwned").exists()


OPTION_CASES = [
    (["--eps", "8/0"], "malformed eps '8/0'"),
    (["--eps", "-1"], "eps -1 is out of range"),
    (["--eps", "abc"], "malformed eps 'abc'"),
    (["--dataset", "cifar11"], "unknown data set 'cifar11'"),
    (["--n-examples", "20000"], "outside the 10000 test images"),
    (["--threat-model", "L7"], "unknown threat model 'L7'"),
    (["--attack", "pgd"], "unknown attack"),
    (["--metrics", "deletion"], "unknown metric 'deletion'"),
]


@pytest.mark.parametrize(("extra", "fragment"), OPTION_CASES, ids=[" ".join(c[0]) for c in OPTION_CASES])
def test_bad_option(case, extra, fragment):
    proc = case.run_here("--model", str(case.dir / "good_linear.py"), *FAST, *extra)
    _assert_clean_failure(case, proc, fragment)


def test_locked_database(case):
    holder = sqlite3.connect(case.path, timeout=1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = case.run_here(
            "--model", str(case.dir / "good_linear.py"), *FAST, db_url=f"sqlite:///{case.path}?timeout=1"
        )
    finally:
        holder.rollback()
        holder.close()
    _assert_clean_failure(case, proc, "locked")


def test_corrupt_database_file_is_not_overwritten(case):
    garbage = b"SQLite format 3\x00" + bytes(range(256)) * 16
    case.path.write_bytes(garbage)
    for suffix in ("-wal", "-shm"):
        Path(f"{case.path}{suffix}").unlink(missing_ok=True)
    proc = case.run_here("--model", str(case.dir / "good_linear.py"), *FAST)
    assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "damaged" in proc.stderr or "not a SQLite database" in proc.stderr
    assert case.path.read_bytes() == garbage


def test_foreign_database_is_refused(case):
    other = case.path.with_name("other.db")
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    before = other.read_bytes()
    proc = case.run_here("--model", str(case.dir / "good_linear.py"), *FAST, db_url=f"sqlite:///{other}")
    assert proc.returncode != 0 and "belongs to another program" in proc.stderr
    assert other.read_bytes() == before


def _limit_file_size(limit: int):
    def apply() -> None:
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, like a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_disk_full(case):
    proc = case.run("--model", str(case.dir / "good_linear.py"), *FAST, preexec=_limit_file_size(4096))
    _assert_clean_failure(case, proc, "disk is full")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root for a read-only mount")
def test_read_only_results_directory(case):
    results = case.path.parent
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind -o ro {results} {results} && true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("read-only bind mounts are not permitted here")
    script = (
        f"mount --bind {results} {results} && mount -o remount,ro,bind {results} && "
        f"exec {sys.executable} -m harness run --model {case.dir / 'good_linear.py'} {' '.join(FAST)} "
        f"--db sqlite:///{case.path} --data-dir {ROOT / 'data'}"
    )
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    _assert_clean_failure(case, proc, "read-only")
