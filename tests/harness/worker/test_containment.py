"""Containment of a worker's process tree and files (harness.worker.containment), with real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from harness.worker.containment import PREFIX, remove_tree, sweep_stale_worker_dirs

ROOT = Path(__file__).resolve().parents[3]
IS_ROOT = os.geteuid() == 0

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="containment uses Linux process and mount APIs")


def _marked(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if marker.encode() in Path("/proc", entry, "cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


def _gone(marker: str, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while _marked(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _marked(marker)


def _python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


DAEMON = """
    import os, subprocess, sys
    def daemon(marker):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker])  # a plain child
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(120)", marker, "daemon"])
            os._exit(0)
        os.wait()
"""


@pytest.mark.parametrize("mode", ["pid-namespace", "subreaper", "subreaper-asked"])
def test_nothing_the_worker_starts_survives_it(mode):
    """Also without a PID namespace: where none can be made, and where none is asked for (CUDA workers)."""
    marker = f"robint-test-{uuid.uuid4().hex}"
    code = (
        DAEMON
        + """
    import harness.worker.containment as c
    if sys.argv[2] == "subreaper":
        def refuse():
            raise OSError(1, "no namespaces here")
        c._new_pid_namespace = refuse
    got = c.supervise(None, None, pid_namespace=sys.argv[2] != "subreaper-asked")
    print(got, flush=True)
    daemon(sys.argv[1])
    """
    )
    proc = _python(code, marker, mode)
    try:
        assert proc.returncode == 0, proc.stderr
        if mode == "pid-namespace" and proc.stdout.strip() != mode:
            pytest.skip("this machine cannot create PID namespaces")
        assert proc.stdout.strip() == mode.removesuffix("-asked")
        assert _gone(marker), "a descendant of the worker survived it"
    finally:
        for pid in _marked(marker):
            os.kill(pid, 9)


def test_the_supervisor_relays_the_workers_exit_status_and_signal():
    code = "import os, signal, sys\nimport harness.worker.containment as c\nc.supervise(None, None)\n"
    assert _python(code + "sys.exit(7)").returncode == 7
    assert _python(code + "os.kill(os.getpid(), signal.SIGXCPU)").returncode == -24  # -SIGXCPU: --cpu-limit


def test_a_worker_dies_with_its_parent_and_cleans_up(tmp_path):
    """The harness (here: a middle process) is killed with SIGKILL; the supervisor below it kills the worker and
    removes the worker's directory."""
    marker = f"robint-test-{uuid.uuid4().hex}"
    work = tmp_path / "work"
    work.mkdir()
    worker = (
        "import os, pathlib, subprocess, sys, time\n"
        "import harness.worker.containment as c\n"
        "c.supervise(int(sys.argv[1]), pathlib.Path(sys.argv[2]))\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', sys.argv[3] + '-child'])\n"
        "time.sleep(120)\n"
    )
    middle_code = (
        "import os, subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', sys.argv[1], str(os.getpid()), sys.argv[2], sys.argv[3]])\n"
        "time.sleep(120)\n"
    )
    middle = subprocess.Popen([sys.executable, "-c", middle_code, worker, str(work), marker], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not _marked(marker + "-child") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _marked(marker + "-child"), "the worker never started"
        middle.kill()
        middle.wait()
        assert _gone(marker), "the worker outlived its parent"
        deadline = time.monotonic() + 10
        while work.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not work.exists()
    finally:
        middle.kill()
        for pid in _marked(marker):
            os.kill(pid, 9)


def test_stale_worker_directories_are_swept_and_live_ones_kept(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    start = int(Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()[19])
    live = tmp_path / f"{PREFIX}{os.getpid()}-{start}-aa"
    stale = tmp_path / f"{PREFIX}{dead.pid}-12345-bb"
    reused_pid = tmp_path / f"{PREFIX}{os.getpid()}-{start + 1}-cc"  # same pid, another process
    legacy_old, legacy_new = tmp_path / f"{PREFIX}oldname", tmp_path / f"{PREFIX}newname"
    for d in (live, stale, reused_pid, legacy_old, legacy_new):
        (d / "sub").mkdir(parents=True)
    os.utime(legacy_old, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    removed = sweep_stale_worker_dirs(tmp_path)
    assert sorted(removed) == sorted([stale, reused_pid, legacy_old])
    assert live.is_dir() and legacy_new.is_dir()


def test_remove_tree_removes_what_a_worker_locked_and_never_follows_links(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    tree = tmp_path / "tree"
    (tree / "locked" / "deeper").mkdir(parents=True)
    (tree / "locked" / "deeper" / "f").write_text("x")
    (tree / "link").symlink_to(outside, target_is_directory=True)
    (tree / "locked").chmod(0)
    remove_tree(tree)
    assert not tree.exists() and (outside / "keep").read_text() == "x"


@pytest.mark.skipif(not IS_ROOT, reason="covering directories with a tmpfs needs root")
def test_directories_nobody_can_traverse_are_covered_and_only_the_needed_paths_shown(tmp_path):
    private = tmp_path / "private"
    needed = private / "a" / "needed"
    needed.mkdir(parents=True)
    (needed / "file").write_text("readable")
    (needed / "file").chmod(0o644)
    needed.chmod(0o755)
    (private / "secret").write_text("hidden")
    private.chmod(0o700)
    code = f"""
    import os
    from pathlib import Path
    from harness.worker import linux
    from harness.worker.containment import expose
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    print([str(p) for p in expose([Path({str(needed)!r})], 65534, 65534)])
    os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
    print(Path({str(needed / "file")!r}).read_text())
    print(os.path.exists({str(private / "secret")!r}))
    """
    proc = _python(code)
    if "Operation not permitted" in proc.stderr:
        pytest.skip("mount namespaces are not permitted here")
    assert proc.returncode == 0, proc.stderr
    covered, content, secret_visible = proc.stdout.split("\n")[:3]
    assert covered != "[]" and content == "readable" and secret_visible == "False"
    assert (private / "secret").read_text() == "hidden"  # the host's view is unchanged
