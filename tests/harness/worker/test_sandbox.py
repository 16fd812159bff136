"""The worker sandbox, checked with real sandboxed child processes (no mocks)."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import pytest

from harness.worker.sandbox import (
    ETC,
    SandboxPolicy,
    SandboxReport,
    default_read_paths,
    landlock_abi,
    scrubbed_env,
)

ROOT = Path(__file__).resolve().parents[3]
ABI = landlock_abi() if sys.platform == "linux" else None
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox uses Linux system calls")
needs_landlock = pytest.mark.skipif(ABI is None, reason="this kernel has no Landlock")
needs_seccomp = pytest.mark.skipif(platform.machine() != "x86_64", reason="the seccomp filter is x86_64 only")

PRELUDE = """
import json, os, sys
from dataclasses import asdict
from pathlib import Path
from harness.worker.sandbox import SandboxPolicy, apply_sandbox, default_read_paths

params = json.loads(sys.argv[1])
args = params["args"]
tmp = Path.cwd()
out = {}

def attempt(name, fn):
    try:
        out[name] = ["ok", fn()]
    except Exception as exc:
        out[name] = [type(exc).__name__, getattr(exc, "errno", None)]

extra = [Path(p) for p in params["extra"]]
policy = SandboxPolicy(read_paths=default_read_paths(extra), write_paths=(tmp,), **params["policy"])
out["report"] = asdict(apply_sandbox(policy))
"""


def run_child(
    tmp_path: Path, body: str, *, args: dict | None = None, extra: tuple[str, ...] = (), timeout: float = 30, **policy
) -> subprocess.CompletedProcess:
    """Run ``body`` in a fresh interpreter after ``apply_sandbox``; the worker's temp dir is ``tmp_path/worker``."""
    work = tmp_path / "worker"
    work.mkdir(exist_ok=True)
    policy = {"memory_bytes": 1 << 30, "cpu_seconds": 30, **policy}
    code = PRELUDE + textwrap.dedent(body) + "\nprint(json.dumps(out, default=str))\n"
    params = json.dumps({"policy": policy, "args": args or {}, "extra": list(extra)})
    return subprocess.run(
        [sys.executable, "-c", code, params],
        env=child_env(work),
        cwd=work,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def child_env(work: Path) -> dict[str, str]:
    """A worker's environment, plus ``PYTHONPATH`` when the tests run with one (a checkout used through it: the
    child must import this checkout's harness, as harness.worker.channel.worker_argv arranges for real workers)."""
    return {**scrubbed_env(work), **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {})}


def child_results(tmp_path: Path, body: str, **kwargs) -> dict:
    proc = run_child(tmp_path, body, **kwargs)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.fixture
def parent_db(tmp_path: Path) -> Path:
    """A file outside the worker's paths, standing in for the parent's SQLite database."""
    db = tmp_path / "parent" / "results.db"
    db.parent.mkdir()
    db.write_bytes(b"SQLite format 3\x00 secret rows")
    return db


# ------------------------------------------------------------------------------------------- filesystem


@needs_landlock
def test_files_outside_the_policy_cannot_be_read(tmp_path, parent_db):
    res = child_results(
        tmp_path,
        """
        attempt("exists", lambda: Path(args["db"]).exists())
        attempt("read_db", lambda: Path(args["db"]).read_bytes())
        attempt("list_parent", lambda: os.listdir(Path(args["db"]).parent))
        attempt("read_repo_root", lambda: Path(args["root"], "pyproject.toml").read_text())
        attempt("read_home", lambda: os.listdir(Path("/root") if os.path.isdir("/root") else Path.home()))
        attempt("read_harness", lambda: len(Path(args["root"], "harness", "worker", "sandbox.py").read_text()) > 0)
        import harness.core.errors  # noqa: F401  -- the project's own packages keep importing
        attempt("find_metrics", lambda: Path(args["root"], "metrics", "__init__.py").is_file())
    """,
        args={"db": str(parent_db), "root": str(ROOT)},
    )
    assert res["report"]["filesystem_isolated"] is True
    assert res["exists"] == ["ok", True]  # stat is not restricted by Landlock; contents are
    assert res["read_db"][0] == "PermissionError"
    assert res["list_parent"][0] == "PermissionError"
    assert res["read_repo_root"][0] == "PermissionError"
    assert res["read_home"][0] == "PermissionError"
    assert res["read_harness"] == ["ok", True]
    assert res["find_metrics"] == ["ok", True]


@needs_landlock
def test_writes_only_inside_write_paths(tmp_path, parent_db):
    res = child_results(
        tmp_path,
        """
        def write_inside():
            (tmp / "sub").mkdir()
            (tmp / "sub" / "a.txt").write_text("x")
            os.rename(tmp / "sub" / "a.txt", tmp / "b.txt")
            with open(tmp / "b.txt", "w") as f:
                f.write("truncated and rewritten")
            os.remove(tmp / "b.txt")
            return True
        attempt("inside", write_inside)
        attempt("new_file_outside", lambda: Path(args["db"]).with_name("evil.txt").write_text("x"))
        attempt("overwrite_db", lambda: Path(args["db"]).write_bytes(b""))
        attempt("remove_db", lambda: os.remove(args["db"]))
        attempt("dev_null", lambda: open("/dev/null", "w").write("x"))
    """,
        args={"db": str(parent_db)},
    )
    assert res["inside"] == ["ok", True]
    assert res["new_file_outside"][0] == "PermissionError"
    assert res["overwrite_db"][0] == "PermissionError"
    assert res["remove_db"][0] == "PermissionError"
    assert res["dev_null"] == ["ok", 1]
    assert parent_db.read_bytes().startswith(b"SQLite format 3")
    assert not parent_db.with_name("evil.txt").exists()


@needs_landlock
def test_raw_block_devices_are_not_readable(tmp_path):
    devices = [p for p in Path("/dev").iterdir() if p.exists() and stat.S_ISBLK(p.stat().st_mode)]
    if not devices:
        pytest.skip("no block device in /dev")
    res = child_results(
        tmp_path, 'attempt("read", lambda: open(args["dev"], "rb").read(512))', args={"dev": str(devices[0])}
    )
    assert res["read"][0] == "PermissionError"


# -------------------------------------------------------------------------------------- environment, procfs


@needs_landlock
def test_environment_is_scrubbed_and_parent_proc_unreadable(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBINT_SECRET_TOKEN", "hunter2")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter3")
    res = child_results(
        tmp_path,
        """
        out["env"] = sorted(os.environ)
        ppid = os.getppid()
        attempt("parent_environ", lambda: open(f"/proc/{ppid}/environ", "rb").read())
        attempt("parent_cmdline", lambda: open(f"/proc/{ppid}/cmdline", "rb").read())
        attempt("parent_mem", lambda: open(f"/proc/{ppid}/mem", "rb").close())
        attempt("init_environ", lambda: open("/proc/1/environ", "rb").read())
        attempt("own_status", lambda: "Seccomp" in Path("/proc/self/status").read_text())
        attempt("cpuinfo", lambda: len(Path("/proc/cpuinfo").read_text()) > 0)
    """,
    )
    assert "ROBINT_SECRET_TOKEN" not in res["env"] and "AWS_SECRET_ACCESS_KEY" not in res["env"]
    for name in ("parent_environ", "parent_cmdline", "parent_mem", "init_environ"):
        assert res[name][0] == "PermissionError", (name, res[name])
    assert res["own_status"] == ["ok", True]
    assert res["cpuinfo"] == ["ok", True]


def test_scrubbed_env_keeps_only_the_documented_variables(tmp_path, monkeypatch):
    secrets = ("GITHUB_TOKEN", "AWS_ACCESS_KEY_ID", "SSH_AUTH_SOCK", "PYTHONPATH", "VIRTUAL_ENV", "NVIDIA_API_KEY")
    for name in (*secrets, "CUDA_API_TOKEN", "NVIDIA_DRIVER_CAPABILITIES"):
        monkeypatch.setenv(name, "secret")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    env = scrubbed_env(tmp_path)
    for name in (*secrets, "CUDA_API_TOKEN", "NVIDIA_DRIVER_CAPABILITIES"):  # no wildcards: names only
        assert name not in env
    assert env["CUDA_VISIBLE_DEVICES"] == "0"
    assert env["OMP_NUM_THREADS"] == "2" and env["MKL_NUM_THREADS"] == "3"  # the thread counts pass by name
    assert "USER" not in env and scrubbed_env(tmp_path, user="robint-worker-7")["USER"] == "robint-worker-7"
    with pytest.raises(ValueError, match="names, not patterns"):
        scrubbed_env(tmp_path, keep=("NVIDIA_*",))
    for name in (
        "HOME",
        "TMPDIR",
        "MPLCONFIGDIR",
        "NUMBA_CACHE_DIR",
        "TORCHINDUCTOR_CACHE_DIR",
        "TRITON_CACHE_DIR",
        "XDG_CACHE_HOME",
    ):
        assert env[name] == str(tmp_path)
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert scrubbed_env(tmp_path, keep=()).keys() <= {
        "PATH",
        "LANG",
        "LC_ALL",
        "PYTHONNOUSERSITE",
        "PYTHONDONTWRITEBYTECODE",
        "TQDM_MININTERVAL",
        "HOME",
        "TMPDIR",
        "MPLCONFIGDIR",
        "NUMBA_CACHE_DIR",
        "TORCHINDUCTOR_CACHE_DIR",
        "TRITON_CACHE_DIR",
        "XDG_CACHE_HOME",
    }
    with pytest.raises(ValueError, match="tmpdir"):
        scrubbed_env(Path("relative"))


def test_default_read_paths_are_narrow(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # the worker may run with the repository root on sys.path
    paths = default_read_paths(extra=[ROOT / "submissions"])
    assert Path(sys.prefix) in paths and Path(sys.base_prefix) in paths
    assert ROOT / "harness" in paths and ROOT / "metrics" in paths and ROOT / "submissions" in paths
    for broad in (Path("/"), ROOT, Path("/proc"), Path("/tmp"), Path("/dev"), Path.home(), Path("/root")):
        assert broad not in paths, broad
    assert not any(p.parts[:2] == ("/", "proc") and p.parts[2:3] and p.parts[2].isdigit() for p in paths)
    # an allow-list: the libraries, not all of /usr (data sets live in /usr/share) or of /etc
    for broad in (Path("/usr/share"), Path("/home"), Path("/var"), Path("/opt"), Path("/srv"), Path("/mnt")):
        assert not any(p == broad or broad in p.parents for p in paths), broad
    assert Path("/usr") not in paths and Path("/etc") not in paths
    assert Path("/usr/lib") in paths and Path("/etc/ld.so.cache") in paths
    assert all(p.parent == Path("/etc") and str(p) in ETC for p in paths if Path("/etc") in p.parents)


def test_forbidden_paths_are_carved_out_of_what_may_be_read(tmp_path, monkeypatch):
    """A data directory beside the interpreter (or inside an allowed directory) is cut out of it: the directories
    around it stay readable, it does not."""
    venv = tmp_path / "venv"
    for sub in ("lib/site", "data/fashion-mnist", "bin"):
        (venv / sub).mkdir(parents=True)
    monkeypatch.syspath_prepend(str(venv))
    paths = default_read_paths(forbidden=[venv / "data" / "fashion-mnist"])
    assert venv not in paths and venv / "lib" in paths and venv / "bin" in paths
    assert not any(p == venv / "data" / "fashion-mnist" or venv / "data" / "fashion-mnist" in p.parents for p in paths)
    assert default_read_paths(extra=[venv / "data" / "fashion-mnist" / "x"], forbidden=[venv / "data"]) == tuple(
        p for p in default_read_paths(forbidden=[venv / "data"])
    )


def test_policy_rejects_bad_values():
    with pytest.raises(ValueError, match="absolute"):
        SandboxPolicy(read_paths=("relative",), write_paths=(), memory_bytes=None, cpu_seconds=None)
    with pytest.raises(ValueError, match="memory_bytes"):
        SandboxPolicy(read_paths=(), write_paths=(), memory_bytes=0, cpu_seconds=None)
    with pytest.raises(ValueError, match="/proc"):
        SandboxPolicy(read_paths=(Path("/proc"),), write_paths=(), memory_bytes=None, cpu_seconds=None)
    with pytest.raises(ValueError, match="memory_limit_kind"):
        SandboxPolicy(read_paths=(), write_paths=(), memory_bytes=1, cpu_seconds=None, memory_limit_kind="rss")
    policy = SandboxPolicy(read_paths=["/usr"], write_paths=[], memory_bytes=None, cpu_seconds=None)
    assert policy.read_paths == (Path("/usr"),)


# ------------------------------------------------------------------------------------------------ network


@needs_seccomp
def test_network_is_blocked(tmp_path):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    unix_listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with listener, unix_listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        unix_path = tmp_path / "parent.sock"  # a service of the parent, reachable by path
        unix_listener.bind(str(unix_path))
        unix_listener.listen()
        res = child_results(
            tmp_path,
            """
            import socket, multiprocessing
            attempt("tcp", lambda: socket.create_connection(("127.0.0.1", args["port"]), timeout=2).close())
            attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9)))
            attempt("tcp6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
            attempt("packet", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW))
            attempt("vsock", lambda: socket.socket(40, socket.SOCK_STREAM))
            attempt("unix_path", lambda: socket.socket(socket.AF_UNIX).connect(args["unix"]))
            def pipe():
                a, b = multiprocessing.Pipe()
                a.send("ping")
                return b.recv()
            attempt("pipe", pipe)
        """,
            args={"port": listener.getsockname()[1], "unix": str(unix_path)},
            allow_unix_sockets=False,
        )
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()
    for name in ("tcp", "udp", "tcp6", "packet", "vsock", "unix_path"):
        assert res[name][0] == "PermissionError", (name, res[name])
    assert res["pipe"] == ["ok", "ping"]
    assert "seccomp" in res["report"]["network"]
    if ABI is not None and ABI >= 4:
        assert "landlock" in res["report"]["network"]
    if IS_ROOT:
        assert "namespace" in res["report"]["network"]


@needs_seccomp
def test_escape_hatches_are_closed(tmp_path):
    res = child_results(
        tmp_path,
        """
        import ctypes, threading, subprocess
        libc = ctypes.CDLL(None, use_errno=True)
        def call(nr, *a):
            return libc.syscall(nr, *a), ctypes.get_errno()
        attempt("io_uring_setup", lambda: call(425, 1, None))
        attempt("unshare_user", lambda: call(272, 0x10000000))
        attempt("keyctl", lambda: call(250, 0, -3, 0))
        t = threading.Thread(target=lambda: out.setdefault("thread", True))
        t.start(); t.join()
        attempt("subprocess", lambda: subprocess.run(["true"]).returncode)
        attempt("fork", lambda: os.waitpid(pid, 0)[1] if (pid := os.fork()) else os._exit(0))
    """,
    )
    assert res["io_uring_setup"] == ["ok", [-1, 38]]  # ENOSYS
    assert res["unshare_user"] == ["ok", [-1, 1]]  # EPERM
    assert res["keyctl"] == ["ok", [-1, 1]]
    assert res["thread"] is True and res["subprocess"] == ["ok", 0] and res["fork"] == ["ok", 0]
    assert res["report"]["seccomp"] is True and res["report"]["no_new_privs"] is True


# ------------------------------------------------------------------------------------- signals, capabilities


@pytest.mark.skipif(ABI is None or ABI < 6, reason="Landlock signal scoping needs ABI >= 6")
def test_signals_cannot_leave_the_sandbox(tmp_path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        res = child_results(
            tmp_path,
            """
            import signal
            attempt("parent", lambda: os.kill(os.getppid(), 0))
            attempt("bystander", lambda: os.kill(args["pid"], signal.SIGTERM))
            attempt("self", lambda: os.kill(os.getpid(), 0))
        """,
            args={"pid": bystander.pid},
        )
        assert bystander.poll() is None
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()
    assert res["parent"][0] == "PermissionError"
    assert res["bystander"][0] == "PermissionError"
    assert res["self"] == ["ok", None]
    assert res["report"]["signals_scoped"] is True


@pytest.mark.skipif(not IS_ROOT, reason="capabilities are only held by root here")
def test_root_keeps_no_capabilities(tmp_path):
    res = child_results(
        tmp_path,
        """
        status = dict(l.split(":", 1) for l in Path("/proc/self/status").read_text().splitlines())
        out["caps"] = {k: int(status[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
        (tmp / "f").write_text("x")
        attempt("chown", lambda: os.chown(tmp / "f", 1234, 1234))
        attempt("setuid", lambda: os.setuid(1234))
    """,
    )
    assert res["report"]["capabilities_dropped"] is True
    assert res["caps"] == dict.fromkeys(("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"), 0)
    assert res["chown"][0] == "PermissionError"
    assert res["setuid"][0] == "PermissionError"
    assert res["report"]["namespaces"] == ["net", "ipc"]


# ------------------------------------------------------------------------------------------------- limits


@pytest.mark.parametrize("kind", ["address_space", "data"])
def test_memory_limit_turns_a_huge_allocation_into_memory_error(tmp_path, kind):
    res = child_results(
        tmp_path,
        """
        attempt("alloc", lambda: len(bytearray(4 << 30)))
        attempt("small", lambda: len(bytearray(64 << 20)))
    """,
        memory_bytes=1 << 30,
        memory_limit_kind=kind,
    )
    assert res["alloc"][0] == "MemoryError"
    assert res["small"] == ["ok", 64 << 20]
    assert res["report"]["limits"]["RLIMIT_AS" if kind == "address_space" else "RLIMIT_DATA"] == 1 << 30


def test_cpu_limit_stops_a_busy_loop(tmp_path):
    proc = run_child(tmp_path, "while True:\n    pass\n", cpu_seconds=1, timeout=30)
    assert proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL), proc.stderr


def test_report_is_json_and_says_what_was_applied(tmp_path):
    res = child_results(tmp_path, "pass", max_open_files=128)
    report = SandboxReport(**res["report"])
    assert json.loads(json.dumps(asdict(report))) == res["report"]
    assert report.limits["RLIMIT_NOFILE"] == 128 and report.limits["RLIMIT_CPU"] == 30
    assert report.limits["RLIMIT_AS"] == 1 << 30 and report.limits["RLIMIT_CORE"] == 0
    assert report.landlock_abi == ABI
    assert report.filesystem_isolated is (ABI is not None)
    if ABI is not None and platform.machine() == "x86_64" and IS_ROOT:
        assert report.network == "namespace+seccomp+landlock" if ABI >= 4 else "namespace+seccomp"
        assert not [note for note in report.notes if "failed" in note]


def test_refuses_to_run_once_threads_exist(tmp_path):
    work = tmp_path / "worker"
    work.mkdir()
    code = textwrap.dedent("""
        import threading, time
        from pathlib import Path
        from harness.worker.sandbox import SandboxPolicy, apply_sandbox
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        try:
            apply_sandbox(SandboxPolicy(read_paths=(), write_paths=(), memory_bytes=None, cpu_seconds=None))
        except RuntimeError as exc:
            print("refused:", exc)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], env=child_env(work), cwd=work, capture_output=True, text=True, timeout=30
    )
    assert "refused: apply_sandbox must run before any thread starts" in proc.stdout, proc.stderr


# ---------------------------------------------------------------------------------- the worker still works


@needs_landlock
def test_torch_and_the_attribution_libraries_still_work(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    (submission / "model.py").write_text("import torch\nMODEL = torch.nn.Conv2d(1, 4, 3)\n")
    res = child_results(
        tmp_path,
        """
        import importlib.util, warnings
        warnings.simplefilter("ignore")
        import torch
        spec = importlib.util.spec_from_file_location("model", Path(args["submission"], "model.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        out["conv"] = list(module.MODEL(torch.rand(2, 1, 28, 28)).shape)
        out["conv2"] = list(torch.nn.Conv2d(1, 4, 3)(torch.rand(2, 1, 28, 28)).shape)
        import captum, numpy, quantus, scipy, shap  # noqa: F401  -- imported lazily by the worker
        out["imported"] = True
        torch.save(module.MODEL.state_dict(), tmp / "w.pt")
        out["saved"] = len(torch.load(tmp / "w.pt"))
    """,
        args={"submission": str(submission)},
        extra=(str(submission),),
        memory_bytes=8 << 30,
        memory_limit_kind="data",
        cpu_seconds=120,
        timeout=180,
    )
    assert res["report"]["filesystem_isolated"] is True
    assert res["conv"] == [2, 4, 26, 26] and res["conv2"] == [2, 4, 26, 26]
    assert res["imported"] is True and res["saved"] == 2
