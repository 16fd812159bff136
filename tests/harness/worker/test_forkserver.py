"""The fork server (harness.worker.forkserver): CPU workers are forked from one interpreter that imported torch once,
and are otherwise what a fresh ``python -I -m harness.worker`` is."""

import os
import re
import signal
import subprocess
import sys
import time

from harness.pipeline.channels import WorkerLimits, open_channel
from harness.worker import forkserver
from harness.worker.channel import worker_argv


def _report(monkeypatch, *, server: bool) -> tuple[type, dict]:
    monkeypatch.setenv(forkserver.OFF_VARIABLE, "1" if server else "0")
    channel = open_channel(WorkerLimits(progress=False), {})
    try:
        kind, report = type(channel.proc), dict(channel.sandbox_report)
    finally:
        channel.close()
    assert channel.proc.poll() is not None  # reaped: its exit status is known
    return kind, report


def test_a_forked_worker_is_sandboxed_as_a_fresh_one(monkeypatch):
    """Forked by default, fresh with ROBINT_FORKSERVER=0, and the same sandbox either way (every layer the report
    lists: containment, filesystem, network, limits, user)."""
    forked, forked_report = _report(monkeypatch, server=True)
    fresh, fresh_report = _report(monkeypatch, server=False)
    assert forked is forkserver.ForkedProcess and fresh is subprocess.Popen
    for report in (forked_report, fresh_report):  # each worker has a user of its own
        report.pop("uid", None)
        report["notes"] = [re.sub(r"uid \d+", "uid N", note) for note in report["notes"]]
    assert forked_report == fresh_report
    assert forked_report["containment"] == "pid-namespace" and forked_report["filesystem_isolated"]


def test_a_forked_workers_exit_status_and_signals_are_the_servers_to_report():
    """The server reports each worker's exit (a worker that reads no spawn spec fails with status 1); a worker
    it has reaped is never signalled again (its process ID may be another process's by then)."""
    server = forkserver.ForkServer(worker_argv(forkserver.__name__), {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
    try:
        assert server.pid != os.getpid()
        worker = server.spawn({"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"}, "/")
        assert worker.poll() is None
        # waiting for its spawn spec: nothing of the server (its socket, its wake-up pipe) is open in it
        deadline = time.monotonic() + 30
        while sorted(os.listdir(f"/proc/{worker.pid}/fd"), key=int) != ["0", "1", "2"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(os.listdir(f"/proc/{worker.pid}/fd"), key=int) == ["0", "1", "2"]
        assert os.readlink(f"/proc/{worker.pid}/cwd") == "/"
        worker.stdin.close()  # no spawn spec: the worker's main fails to parse one and exits
        assert worker.wait(timeout=60) == 1
        assert b"JSONDecodeError" in worker.stderr.read()
        sleeper = server.spawn({"PATH": "/usr/bin:/bin"}, "/")
        sleeper.send_signal(signal.SIGKILL)
        assert sleeper.wait(timeout=60) == -signal.SIGKILL
        worker.send_signal(signal.SIGKILL)  # reaped: nothing is sent, and the server goes on
        assert server.spawn({"PATH": "/usr/bin:/bin"}, "/").pid > 0
    finally:
        server.close()
    assert server.proc.returncode == 0  # it exits when the harness's end of its socket closes


def test_the_server_ends_with_its_harness(tmp_path):
    """A harness killed with SIGKILL (no atexit): its fork server notices within seconds and exits."""
    script = (
        "import sys, time\n"
        "from harness.pipeline.channels import WorkerLimits, open_channel\n"
        "from harness.worker import forkserver\n"
        "open_channel(WorkerLimits(progress=False), {})\n"
        "print(*forkserver.server_pids(), flush=True)\n"
        "time.sleep(600)\n"
    )
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        (pid,) = map(int, harness.stdout.readline().split())
        os.kill(pid, 0)  # alive
        harness.kill()
        harness.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pid), "the fork server outlived its harness"
    finally:
        if harness.poll() is None:
            harness.kill()


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_forkserver_off_starts_no_server(monkeypatch):
    monkeypatch.setenv(forkserver.OFF_VARIABLE, "0")
    assert forkserver.spawn(worker_argv(forkserver.__name__), {"PATH": "/bin"}, "/") is None
