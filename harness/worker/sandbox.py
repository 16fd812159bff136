"""Process sandbox for evaluation workers: rlimits, namespaces, an unprivileged user, seccomp, Landlock, no
capabilities (the system calls are in harness.worker.linux; the process tree around the worker, and the user switch,
in harness.worker.containment).

A worker calls :func:`apply_sandbox` first thing, single-threaded, before importing torch or the submission. Every
step is best-effort and recorded in the returned :class:`SandboxReport`; the caller decides whether a partial sandbox
is acceptable (e.g. refuse to run when ``report.filesystem_isolated`` is false). Linux only; seccomp needs x86_64.

Layers, in the order applied:

1. rlimits: memory (``RLIMIT_AS`` or ``RLIMIT_DATA``), CPU seconds, open files, processes (``RLIMIT_NPROC``: the
   worker's own user id as root, its own user namespace otherwise, so it counts this worker's tasks alone), no core
   dumps.
2. namespaces: a fresh network namespace (only a down loopback) and IPC namespace (no SysV IPC of the host); as
   non-root inside a new user namespace, when the kernel allows it; as root with ``run_as``, a mount namespace too.
3. as root with ``run_as``: the unprivileged user (harness.worker.containment.drop_privileges), so that files only
   root may read (``/etc/shadow``, 0600 keys) are out of reach even where Landlock allows their directory.
4. ``PR_SET_NO_NEW_PRIVS``: execve cannot gain privileges (setuid binaries, file capabilities).
5. seccomp-bpf: with ``block_network``, ``socket(2)`` only for ``AF_UNIX`` (see the policy) and ``AF_NETLINK`` with
   ``NETLINK_ROUTE``, else ``EACCES``, and ``socketpair(2)`` only for ``AF_UNIX`` (stream pairs unless unix sockets
   are allowed); always: io_uring, ``clone3`` and x32 calls give ``ENOSYS``; ``unshare``, ``setns``, namespace flags of
   ``clone``, the kernel keyring calls and every change of a file's mode, owner, times or extended attributes
   (``chmod``, ``chown``, ``utimensat``, ``setxattr``... : Landlock does not govern them, and they could carry a
   message to a later worker) give ``EPERM``; a non-x86_64 syscall ABI (e.g. ``int 0x80``) kills.
6. Landlock: file access only beneath the policy's paths and the process's own ``/proc/<pid>`` (read, write);
   TCP bind/connect denied (ABI >= 4); signals and abstract unix sockets scoped to the sandbox (ABI >= 6).
7. capabilities: bounding and ambient sets cleared, ``SECBIT_NOROOT`` locked, effective/permitted/inheritable zero.

One module because the sandbox's layers (rlimits, namespaces, user, seccomp, Landlock) are applied in one order
in one process, and each layer's reasoning refers to the others.
"""

from __future__ import annotations

import glob
import os
import resource
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.worker import linux
from harness.worker.linux import landlock_abi

__all__ = [
    "DEFAULT_KEEP",
    "SandboxPolicy",
    "SandboxReport",
    "apply_sandbox",
    "carve",
    "default_device_paths",
    "default_read_paths",
    "landlock_abi",
    "scrubbed_env",
]

MemoryLimitKind = Literal["address_space", "data"]

_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
# the environment variables a worker keeps, by exact name (no patterns: a wildcard such as NVIDIA_* once passed
# NVIDIA_API_KEY): which GPUs and in which order, cuBLAS's deterministic workspace, the thread counts, the library
# path, Python's hash seed
DEFAULT_KEEP: tuple[str, ...] = (
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "CUBLAS_WORKSPACE_CONFIG",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "LD_LIBRARY_PATH",
    "PYTHONHASHSEED",
)
# directories of shared libraries and executables (read-only; no data lives there) and /sys
SYSTEM: tuple[str, ...] = (
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/usr/lib",
    "/usr/lib32",
    "/usr/lib64",
    "/usr/libx32",
    "/usr/local/lib",
    "/usr/local/lib64",
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/sys",
)
# the files of /etc that the dynamic loader, the C library and Python read (not the rest of /etc)
ETC: tuple[str, ...] = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/os-release",
)
_SYSTEM_PREFIXES = frozenset(Path(p) for p in ("/", "/usr", "/usr/local"))
TQDM_MININTERVAL_S = "10"  # a worker's progress bars update at most this often (each update is a line: channel)
_CACHE_VARS = (
    "HOME",
    "TMPDIR",
    "MPLCONFIGDIR",
    "NUMBA_CACHE_DIR",
    "TORCHINDUCTOR_CACHE_DIR",
    "TRITON_CACHE_DIR",
    "XDG_CACHE_HOME",
)


def default_device_paths() -> tuple[Path, ...]:
    """Character devices a CPU or CUDA worker needs: null, zero, full, random, urandom and ``/dev/nvidia*``."""
    names = [f"/dev/{n}" for n in ("null", "zero", "full", "random", "urandom")] + sorted(glob.glob("/dev/nvidia*"))
    return tuple(Path(n) for n in names if os.path.exists(n))


@dataclass(frozen=True)
class SandboxPolicy:
    """What a sandboxed worker may touch; paths must be absolute, missing ones are skipped.

    ``memory_limit_kind="address_space"`` (``RLIMIT_AS``) caps all virtual memory; CUDA reserves tens of GiB of
    address space at initialisation, so GPU workers should use ``"data"`` (``RLIMIT_DATA``: private writable and
    heap memory, which still catches large host allocations). ``device_paths`` get read, write and device ioctls (no
    create/remove) beneath them. ``allow_unix_sockets`` (default: only when an NVIDIA device is listed, as CUDA fails
    to initialise without ``socket(AF_UNIX)``) lets ``socket(AF_UNIX)`` and non-stream ``socketpair`` through seccomp.
    ``cpu_seconds`` is CPU time of all threads (SIGXCPU at the limit, SIGKILL 5 s later), not wall time.
    ``RLIMIT_NPROC`` counts every process of the real uid and is not enforced for root. Limits never exceed the
    inherited hard limits. ``run_as`` = (uid, gid): when the process is root, switch to that user after the
    namespaces (harness.worker.containment.drop_privileges); ``required_paths`` must then still be readable (and the
    write paths writable), else :func:`apply_sandbox` raises ``PermissionError`` naming the path.
    ``parent_death_signal`` is re-armed after the user switch, which clears it.
    """

    read_paths: tuple[Path, ...]
    write_paths: tuple[Path, ...]
    memory_bytes: int | None
    cpu_seconds: int | None
    max_open_files: int = 256
    max_processes: int | None = None
    block_network: bool = True
    memory_limit_kind: MemoryLimitKind = "address_space"
    device_paths: tuple[Path, ...] = field(default_factory=default_device_paths)
    allow_unix_sockets: bool | None = None
    run_as: tuple[int, int] | None = None
    required_paths: tuple[Path, ...] = ()
    parent_death_signal: int | None = None

    @property
    def unix_sockets_allowed(self) -> bool:
        """``allow_unix_sockets``, or if None, whether an NVIDIA device is listed (the CUDA driver needs them)."""
        if self.allow_unix_sockets is not None:
            return self.allow_unix_sockets
        return any(p.name.startswith("nvidia") for p in self.device_paths)

    def __post_init__(self) -> None:
        for name in ("read_paths", "write_paths", "device_paths", "required_paths"):
            paths = tuple(Path(p) for p in getattr(self, name))
            for p in paths:
                _validate_path(name, p)
            object.__setattr__(self, name, paths)
        for name in ("memory_bytes", "cpu_seconds", "max_processes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}")
        if self.max_open_files < 16:
            raise ValueError(f"max_open_files must be at least 16, got {self.max_open_files!r}")
        if self.memory_limit_kind not in ("address_space", "data"):
            raise ValueError(f"memory_limit_kind must be 'address_space' or 'data', got {self.memory_limit_kind!r}")


@dataclass
class SandboxReport:
    """What :func:`apply_sandbox` actually applied; JSON-serialisable with ``dataclasses.asdict``.

    ``network`` joins the layers that block IP traffic (``"namespace"``, ``"seccomp"``, ``"landlock"``) with ``+``,
    or is ``"none"``. ``limits`` maps rlimit names to the soft limit now in force (``None`` = unlimited). ``uid`` is
    the user the worker runs as; ``containment`` how its descendants are tied to it (harness.worker.containment).
    """

    landlock_abi: int | None = None
    filesystem_isolated: bool = False
    network: str = "none"
    seccomp: bool = False
    signals_scoped: bool = False
    namespaces: list[str] = field(default_factory=list)
    no_new_privs: bool = False
    capabilities_dropped: bool = False
    limits: dict[str, int | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    uid: int | None = None
    containment: str = "none"


def default_read_paths(extra: Iterable[Path] = (), forbidden: Iterable[Path] = ()) -> tuple[Path, ...]:
    """Read-only paths a Python + torch worker needs, plus ``extra``, with nothing of ``forbidden`` inside them.

    An allow-list: the interpreter's prefixes (a system prefix such as ``/usr`` contributes only its library
    directories), existing ``sys.path`` entries (a source checkout of this project is narrowed to its ``harness``
    and ``metrics`` packages; ``/``, ``$HOME``, ``/tmp``, ``/var/tmp``, ``/dev/shm``, ``/run`` and their ancestors
    are dropped), ``LD_LIBRARY_PATH``'s directories, the shared-library and executable directories (:data:`SYSTEM`:
    ``/lib*``, ``/usr/lib*``, ``/usr/local/lib*``, ``/usr/local/cuda*``, the ``bin`` directories) and ``/sys``,
    the few files of ``/etc`` the dynamic loader and the C library read (:data:`ETC`), and global procfs files
    (``cpuinfo``, ``meminfo``, ``stat``, ``sys``, ``driver``, ``filesystems``, ``loadavg``). Not ``/usr/share``
    (data sets live there: ``/usr/share/datasets``), not the rest of ``/etc``, ``/home``, ``/opt``, ``/srv``,
    ``/var``, ``/mnt``, ``/media``.

    ``forbidden`` (the data directories, the results database, the archive) and the user's home are then carved
    out: an allowed directory that holds one of them is replaced by its entries except the one on the way to it
    (:func:`carve`), and an allowed path inside a forbidden one is dropped (inside the home directory it is kept:
    an interpreter under ``~/.pyenv`` is needed, the rest of the home is not). ``/proc/self`` is not listed:
    :func:`apply_sandbox` always allows it, resolved in the calling process, so the parent's ``/proc/<pid>`` is
    never exposed. Devices are :attr:`SandboxPolicy.device_paths`.
    """
    root = _source_root()
    home = Path.home().resolve()
    broad = {Path(p) for p in ("/", "/tmp", "/var/tmp", "/dev/shm", "/run")} | {home}
    paths: list[Path] = []
    for prefix in {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}:
        if prefix in _SYSTEM_PREFIXES:  # its libraries are in SYSTEM; its bin/python too
            continue
        paths.append(prefix)
    for entry in sys.path:
        p = Path(entry or os.getcwd()).resolve()
        if not p.exists():
            continue
        if root is not None and (p == root or p in root.parents):
            paths += [root / "harness", root / "metrics"]
        elif not any(p == b or p in b.parents for b in broad):
            paths.append(p)
    if root is not None:
        paths += [root / "harness", root / "metrics"]  # the editable install's finder maps the packages here
    paths += [Path(p).resolve() for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p.startswith("/")]
    paths += [Path(p) for p in SYSTEM] + [Path(p) for p in sorted(glob.glob("/usr/local/cuda*"))]
    paths += [Path(p) for p in ETC]
    paths += [Path(p) for p in (sys.executable, os.path.realpath(sys.executable))]
    paths += [Path("/proc", n) for n in ("cpuinfo", "meminfo", "stat", "sys", "driver", "filesystems", "loadavg")]
    paths += [Path(p) for p in extra]
    unique = list(dict.fromkeys(p for p in paths if p.exists()))
    secret = [Path(os.path.realpath(p)) for p in forbidden]
    return tuple(dict.fromkeys(carve(unique, secret, [home])))


def carve(allowed: Iterable[Path], secret: Iterable[Path], private: Iterable[Path] = ()) -> list[Path]:
    """``allowed`` with nothing of ``secret`` or ``private`` beneath any of its paths: a path that holds (or is) one
    of them is replaced by its entries except the one on the way to it (recursively); a path inside ``secret`` is
    dropped, one inside ``private`` kept (it was asked for by name).

    >>> import tempfile
    >>> top = Path(tempfile.mkdtemp())
    >>> for d in ("a/data", "a/lib", "b"):
    ...     (top / d).mkdir(parents=True)
    >>> sorted(str(p.relative_to(top)) for p in carve([top], [top / "a" / "data"]))
    ['a/lib', 'b']
    >>> carve([top / "a" / "data" / "x"], [top / "a" / "data"]), carve([top / "b"], [], [top])
    ([], [PosixPath('...b')])
    """
    secret, private = [Path(p) for p in secret], [Path(p) for p in private]
    out: list[Path] = []
    stack = [Path(p) for p in allowed]
    while stack:
        path = stack.pop(0)
        if any(path == s or s in path.parents for s in secret):
            continue
        holds = [f for f in (*secret, *private) if f == path or path in f.parents]
        if not holds:
            out.append(path)
            continue
        if any(f == path for f in holds) or not path.is_dir() or path.is_symlink():
            continue  # the forbidden path itself (or a file that is one): nothing of it
        try:
            entries = sorted(path.iterdir())
        except OSError:
            continue
        stack[0:0] = [e for e in entries if not any(f == e for f in holds)]
    return out


def scrubbed_env(tmpdir: Path, keep: Iterable[str] = DEFAULT_KEEP, user: str | None = None) -> dict[str, str]:
    """A minimal environment for a worker: an allow-list of variable names.

    Kept from ``os.environ``: the variables named in ``keep`` (exact names; by default :data:`DEFAULT_KEEP`:
    ``CUDA_VISIBLE_DEVICES``, ``CUDA_DEVICE_ORDER``, ``CUBLAS_WORKSPACE_CONFIG``, ``OMP_NUM_THREADS``,
    ``MKL_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``LD_LIBRARY_PATH``, ``PYTHONHASHSEED``). Set: ``PATH`` (the
    interpreter's directory, then ``/usr/local/bin:/usr/bin:/bin``), ``LANG=LC_ALL=C.UTF-8``,
    ``PYTHONNOUSERSITE=1``, ``PYTHONDONTWRITEBYTECODE=1``, ``TQDM_MININTERVAL`` (progress bars update every 10 s),
    ``HOME``, ``TMPDIR``, ``MPLCONFIGDIR``, ``NUMBA_CACHE_DIR``, ``TORCHINDUCTOR_CACHE_DIR``, ``TRITON_CACHE_DIR``,
    ``XDG_CACHE_HOME`` = ``tmpdir``, and with ``user`` ``USER``/``LOGNAME`` (a worker's own uid has no passwd
    entry). Everything else is dropped.

    Raises:
        ValueError: if ``tmpdir`` is not absolute, or ``keep`` holds a pattern instead of a name.
    """
    tmpdir = Path(tmpdir)
    if not tmpdir.is_absolute():
        raise ValueError(f"tmpdir must be an absolute path, got {str(tmpdir)!r}")
    names = tuple(keep)
    if any(not isinstance(n, str) or not n or any(c in n for c in "*?[]") for n in names):
        raise ValueError(f"keep must hold variable names, not patterns: {names!r}")
    env = {name: os.environ[name] for name in names if name in os.environ}
    env.update(
        PATH=f"{Path(sys.executable).parent}:{_SAFE_PATH}",
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        PYTHONNOUSERSITE="1",
        PYTHONDONTWRITEBYTECODE="1",
        TQDM_MININTERVAL=TQDM_MININTERVAL_S,
    )
    env.update(dict.fromkeys(_CACHE_VARS, str(tmpdir)))
    if user is not None:
        env.update(USER=user, LOGNAME=user)
    return env


def apply_sandbox(policy: SandboxPolicy) -> SandboxReport:
    """Sandbox the calling process irreversibly; see the module docstring for the layers.

    Raises:
        RuntimeError: if the process already runs more than one thread (Landlock and capabilities are per thread).
        PermissionError: with ``run_as``, a required path is out of the unprivileged user's reach.
    """
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:  # no procfs, or already inside a sandbox: only Python's own threads are visible
        threads = threading.active_count()
    if threads > 1:
        raise RuntimeError(f"apply_sandbox must run before any thread starts; this process has {threads} threads")
    report = SandboxReport()
    _apply_limits(policy, report)
    root = os.geteuid() == 0
    _apply_namespaces(policy, report)
    if root and policy.run_as is not None:
        from harness.worker.containment import drop_privileges

        drop_privileges(policy, report)
    report.uid = os.getuid()
    report.no_new_privs = _step(report, "PR_SET_NO_NEW_PRIVS", linux.prctl, linux.PR_SET_NO_NEW_PRIVS, 1)
    if report.no_new_privs:
        block, unix = policy.block_network, policy.unix_sockets_allowed
        report.seccomp = _step(report, "seccomp", linux.install_seccomp, block, unix)
        if report.seccomp and policy.block_network and policy.unix_sockets_allowed:
            report.notes.append("socket(AF_UNIX) allowed: pathname unix sockets are reachable")
    report.landlock_abi = landlock_abi()
    report.filesystem_isolated, landlock_net, report.signals_scoped = linux.landlock_restrict(
        list(policy.read_paths),
        list(policy.write_paths),
        list(policy.device_paths),
        block_network=policy.block_network,
        notes=report.notes,
    )
    lock = os.geteuid() == 0 or "user" in report.namespaces
    report.capabilities_dropped = linux.drop_capabilities(report.notes, lock_noroot=lock)
    layers = [
        name
        for name, on in (
            ("namespace", "net" in report.namespaces),
            ("seccomp", report.seccomp),
            ("landlock", landlock_net),
        )
        if on and policy.block_network
    ]
    report.network = "+".join(layers) or "none"
    return report


def _validate_path(name: str, p: Path) -> None:
    if not p.is_absolute():
        raise ValueError(f"{name} must hold absolute paths, got {str(p)!r}")
    parts = p.parts
    if parts[:2] == ("/", "proc") and (len(parts) == 2 or (parts[2].isdigit() and int(parts[2]) != os.getpid())):
        raise ValueError(f"{name} must not expose {str(p)!r}: use /proc/self for the worker's own process")


def _source_root() -> Path | None:
    """This project's source checkout (holding pyproject.toml), or None when installed as a plain package."""
    root = Path(__file__).resolve().parents[2]  # harness/worker/sandbox.py -> the checkout
    return root if (root / "pyproject.toml").is_file() else None


def _step(report: SandboxReport, what: str, fn: Callable[..., object], *args: object) -> bool:
    try:
        fn(*args)
    except OSError as exc:
        report.notes.append(f"{what} failed: {exc.strerror or exc}")
        return False
    return True


def _apply_limits(policy: SandboxPolicy, report: SandboxReport) -> None:
    memory = resource.RLIMIT_AS if policy.memory_limit_kind == "address_space" else resource.RLIMIT_DATA
    cpu_hard = None if policy.cpu_seconds is None else policy.cpu_seconds + 5  # SIGXCPU at soft, SIGKILL at hard
    wanted = {
        "RLIMIT_AS" if memory == resource.RLIMIT_AS else "RLIMIT_DATA": (memory, policy.memory_bytes, None),
        "RLIMIT_CPU": (resource.RLIMIT_CPU, policy.cpu_seconds, cpu_hard),
        "RLIMIT_NOFILE": (resource.RLIMIT_NOFILE, policy.max_open_files, None),
        "RLIMIT_NPROC": (resource.RLIMIT_NPROC, policy.max_processes, None),
        "RLIMIT_CORE": (resource.RLIMIT_CORE, 0, None),
    }
    for name, (res, soft, hard) in wanted.items():
        if soft is not None:
            old_hard = resource.getrlimit(res)[1]
            cap = None if old_hard == resource.RLIM_INFINITY else old_hard  # never raise the inherited hard limit
            hard = soft if hard is None else hard
            try:
                resource.setrlimit(res, (soft, hard) if cap is None else (min(soft, cap), min(hard, cap)))
            except (OSError, ValueError) as exc:
                report.notes.append(f"{name} failed: {exc}")
        cur = resource.getrlimit(res)[0]
        report.limits[name] = None if cur == resource.RLIM_INFINITY else cur
    if policy.max_processes is not None and os.getuid() == 0:
        report.notes.append("RLIMIT_NPROC is not enforced for uid 0; use a cgroup pids.max instead")


def _apply_namespaces(policy: SandboxPolicy, report: SandboxReport) -> None:
    net = linux.CLONE_NEWNET if policy.block_network else 0
    if os.geteuid() == 0:
        mnt = linux.CLONE_NEWNS if policy.run_as is not None else 0  # for the unprivileged user's view of the files
        for flag, name in ((net, "net"), (linux.CLONE_NEWIPC, "ipc"), (mnt, "mnt")):
            if flag and _step(report, f"unshare({name})", linux.unshare, flag):
                report.namespaces.append(name)
        return
    uid, gid = os.getuid(), os.getgid()
    if _step(report, "unshare(user)", linux.unshare, linux.CLONE_NEWUSER | linux.CLONE_NEWIPC | net):
        report.namespaces += ["user", "ipc"] + (["net"] if net else [])
        for file, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            try:
                Path("/proc/self", file).write_text(text)
            except OSError as exc:
                report.notes.append(f"writing /proc/self/{file} failed: {exc.strerror}")
