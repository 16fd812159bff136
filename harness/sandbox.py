"""Process sandbox for evaluation workers: rlimits, namespaces, seccomp, Landlock, no capabilities.

A worker calls :func:`apply_sandbox` first thing, single-threaded, before importing torch or the submission. Every
step is best-effort and recorded in the returned :class:`SandboxReport`; the caller decides whether a partial sandbox
is acceptable (e.g. refuse to run when ``report.filesystem_isolated`` is false). Linux only; seccomp needs x86_64.

Layers, in the order applied:

1. rlimits: memory (``RLIMIT_AS`` or ``RLIMIT_DATA``), CPU seconds, open files, processes, no core dumps.
2. namespaces: a fresh network namespace (only a down loopback) and IPC namespace (no SysV IPC of the host); as
   non-root inside a new user namespace, when the kernel allows it.
3. ``PR_SET_NO_NEW_PRIVS``: execve cannot gain privileges (setuid binaries, file capabilities).
4. seccomp-bpf: with ``block_network``, ``socket(2)`` only for ``AF_UNIX`` (see the policy) and ``AF_NETLINK`` with
   ``NETLINK_ROUTE``, else ``EACCES``, and ``socketpair(2)`` only for ``AF_UNIX`` (stream pairs unless unix sockets
   are allowed); always: io_uring, ``clone3`` and x32 calls give ``ENOSYS``; ``unshare``, ``setns``, namespace flags of
   ``clone`` and the kernel keyring calls give ``EPERM``; a non-x86_64 syscall ABI (e.g. ``int 0x80``) kills.
5. Landlock: file access only beneath the policy's paths and the process's own ``/proc/<pid>`` (read, write);
   TCP bind/connect denied (ABI >= 4); signals and abstract unix sockets scoped to the sandbox (ABI >= 6).
6. capabilities: bounding and ambient sets cleared, ``SECBIT_NOROOT`` locked, effective/permitted/inheritable zero.
"""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import glob
import os
import platform
import resource
import stat
import struct
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "DEFAULT_KEEP",
    "SandboxPolicy",
    "SandboxReport",
    "apply_sandbox",
    "default_device_paths",
    "default_read_paths",
    "landlock_abi",
    "scrubbed_env",
]

MemoryLimitKind = Literal["address_space", "data"]

# Landlock (include/uapi/linux/landlock.h); syscall numbers are the same on every architecture.
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
_LL_EXECUTE, _LL_WRITE_FILE, _LL_READ_FILE, _LL_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_LL_MAKE_CHAR, _LL_MAKE_BLOCK = 1 << 6, 1 << 11
_LL_REFER, _LL_TRUNCATE, _LL_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_LL_FILE_RIGHTS = _LL_EXECUTE | _LL_WRITE_FILE | _LL_READ_FILE | _LL_TRUNCATE | _LL_IOCTL_DEV
_LL_READ = _LL_EXECUTE | _LL_READ_FILE | _LL_READ_DIR
_LL_DEVICE = _LL_READ_FILE | _LL_WRITE_FILE | _LL_TRUNCATE | _LL_IOCTL_DEV | _LL_READ_DIR
_LL_NET_BIND_TCP, _LL_NET_CONNECT_TCP = 1 << 0, 1 << 1
_LL_SCOPE_ABSTRACT_UNIX_SOCKET, _LL_SCOPE_SIGNAL = 1 << 0, 1 << 1

# x86_64 syscall numbers and seccomp/BPF constants.
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_NR = {"socket": 41, "socketpair": 53, "clone": 56, "add_key": 248, "request_key": 249, "keyctl": 250,
       "unshare": 272, "setns": 308, "seccomp": 317, "io_uring_setup": 425, "io_uring_enter": 426,
       "io_uring_register": 427, "clone3": 435}
_RET_KILL_PROCESS, _RET_ERRNO, _RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_LD_W_ABS, _JEQ, _JGE, _JSET, _AND, _RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06
_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
_CLONE_NEWIPC, _CLONE_NEWUSER, _CLONE_NEWNET = 0x08000000, 0x10000000, 0x40000000

_PR_CAPBSET_DROP, _PR_SET_SECUREBITS, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT = 24, 28, 38, 47
_SECBITS_LOCKED_NOROOT = 0x01 | 0x02 | 0x20 | 0x40 | 0x80  # NOROOT, KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE (+locks)

_SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
DEFAULT_KEEP: tuple[str, ...] = (
    "CUDA_VISIBLE_DEVICES", "CUDA_*", "NVIDIA_*", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "LD_LIBRARY_PATH",
    "PYTHONHASHSEED",
)
_CACHE_VARS = ("HOME", "TMPDIR", "MPLCONFIGDIR", "NUMBA_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR",
               "XDG_CACHE_HOME")

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long
_PINNED_FDS: list[int] = []  # O_PATH fd of /proc/self kept open so its Landlock rule keeps matching


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
    inherited hard limits.
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

    @property
    def unix_sockets_allowed(self) -> bool:
        """``allow_unix_sockets``, or if None, whether an NVIDIA device is listed (the CUDA driver needs them)."""
        if self.allow_unix_sockets is not None:
            return self.allow_unix_sockets
        return any(p.name.startswith("nvidia") for p in self.device_paths)

    def __post_init__(self) -> None:
        for name in ("read_paths", "write_paths", "device_paths"):
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
    or is ``"none"``. ``limits`` maps rlimit names to the soft limit now in force (``None`` = unlimited).
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


def default_read_paths(extra: Iterable[Path] = ()) -> tuple[Path, ...]:
    """Read-only paths a Python + torch worker needs, plus ``extra``.

    The interpreter prefixes, existing ``sys.path`` entries (a source checkout of this project is narrowed to its
    ``harness`` and ``metrics`` packages; ``/``, ``$HOME``, ``/tmp``, ``/var/tmp``, ``/dev/shm``, ``/run`` and their
    ancestors are dropped), system directories (``/usr``, ``/lib``, ``/lib64``, ``/bin``, ``/sbin``, ``/etc``,
    ``/sys``) and global procfs files (``cpuinfo``, ``meminfo``, ``stat``, ``sys``, ``driver``, ``filesystems``,
    ``loadavg``). ``/proc/self`` is not listed: :func:`apply_sandbox` always allows it, resolved in the calling
    process, so the parent's ``/proc/<pid>`` is never exposed. Devices are :attr:`SandboxPolicy.device_paths`.
    """
    root = _source_root()
    broad = {Path(p) for p in ("/", "/tmp", "/var/tmp", "/dev/shm", "/run")} | {Path.home().resolve()}
    paths: list[Path] = [Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)]
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
    paths += [Path(p) for p in ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/sys")]
    paths += [Path("/proc", n) for n in ("cpuinfo", "meminfo", "stat", "sys", "driver", "filesystems", "loadavg")]
    paths += [Path(p) for p in extra]
    unique = dict.fromkeys(p for p in paths if p.exists())
    return tuple(unique)


def scrubbed_env(tmpdir: Path, keep: Iterable[str] = DEFAULT_KEEP) -> dict[str, str]:
    """A minimal environment for a worker.

    Kept from ``os.environ``: the variables whose names match a pattern in ``keep`` (fnmatch; by default
    ``CUDA_VISIBLE_DEVICES``, ``CUDA_*``, ``NVIDIA_*``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
    ``LD_LIBRARY_PATH``, ``PYTHONHASHSEED``). Set: ``PATH`` (the interpreter's directory, then
    ``/usr/local/bin:/usr/bin:/bin``), ``LANG=LC_ALL=C.UTF-8``, ``PYTHONNOUSERSITE=1``,
    ``PYTHONDONTWRITEBYTECODE=1``, and ``HOME``, ``TMPDIR``, ``MPLCONFIGDIR``, ``NUMBA_CACHE_DIR``,
    ``TORCHINDUCTOR_CACHE_DIR``, ``TRITON_CACHE_DIR``, ``XDG_CACHE_HOME`` = ``tmpdir``. Everything else is dropped.

    Raises:
        ValueError: if ``tmpdir`` is not absolute.
    """
    tmpdir = Path(tmpdir)
    if not tmpdir.is_absolute():
        raise ValueError(f"tmpdir must be an absolute path, got {str(tmpdir)!r}")
    patterns = tuple(keep)
    env = {k: v for k, v in os.environ.items() if any(fnmatch.fnmatchcase(k, pat) for pat in patterns)}
    env.update(PATH=f"{Path(sys.executable).parent}:{_SAFE_PATH}", LANG="C.UTF-8", LC_ALL="C.UTF-8",
               PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1")
    env.update(dict.fromkeys(_CACHE_VARS, str(tmpdir)))
    return env


def landlock_abi() -> int | None:
    """The kernel's Landlock ABI version, or ``None`` when Landlock is missing or disabled."""
    ret = _LIBC.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_ulong(0), ctypes.c_ulong(1))
    return int(ret) if ret > 0 else None


def apply_sandbox(policy: SandboxPolicy) -> SandboxReport:
    """Sandbox the calling process irreversibly; see the module docstring for the layers.

    Raises:
        RuntimeError: if the process already runs more than one thread (Landlock and capabilities are per thread).
    """
    try:
        threads = len(os.listdir("/proc/self/task"))
    except OSError:  # no procfs, or already inside a sandbox: only Python's own threads are visible
        threads = threading.active_count()
    if threads > 1:
        raise RuntimeError(f"apply_sandbox must run before any thread starts; this process has {threads} threads")
    report = SandboxReport()
    _apply_limits(policy, report)
    _apply_namespaces(policy, report)
    report.no_new_privs = _step(report, "PR_SET_NO_NEW_PRIVS", _prctl, _PR_SET_NO_NEW_PRIVS, 1)
    if report.no_new_privs:
        report.seccomp = _step(report, "seccomp", _apply_seccomp, policy)
        if report.seccomp and policy.block_network and policy.unix_sockets_allowed:
            report.notes.append("socket(AF_UNIX) allowed: pathname unix sockets are reachable")
    landlock_net = _apply_landlock(policy, report)
    _drop_capabilities(report)
    layers = [name for name, on in (("namespace", "net" in report.namespaces), ("seccomp", report.seccomp),
                                    ("landlock", landlock_net)) if on and policy.block_network]
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
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else None


def _step(report: SandboxReport, what: str, fn: Callable[..., object], *args: object) -> bool:
    try:
        fn(*args)
    except OSError as exc:
        report.notes.append(f"{what} failed: {exc.strerror or exc}")
        return False
    return True


def _raise_errno() -> None:
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err))


def _syscall(nr: int, *args: object) -> int:
    cargs = [ctypes.c_ulong(a) if isinstance(a, int) else a for a in args]
    ret = _LIBC.syscall(ctypes.c_long(nr), *cargs)
    if ret < 0:
        _raise_errno()
    return int(ret)


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    if _LIBC.prctl(ctypes.c_int(option), *(ctypes.c_ulong(a) for a in (arg2, arg3, 0, 0))) != 0:
        _raise_errno()


def _apply_limits(policy: SandboxPolicy, report: SandboxReport) -> None:
    memory = resource.RLIMIT_AS if policy.memory_limit_kind == "address_space" else resource.RLIMIT_DATA
    cpu_hard = None if policy.cpu_seconds is None else policy.cpu_seconds + 5  # SIGXCPU at soft, SIGKILL at hard
    wanted = {"RLIMIT_AS" if memory == resource.RLIMIT_AS else "RLIMIT_DATA": (memory, policy.memory_bytes, None),
              "RLIMIT_CPU": (resource.RLIMIT_CPU, policy.cpu_seconds, cpu_hard),
              "RLIMIT_NOFILE": (resource.RLIMIT_NOFILE, policy.max_open_files, None),
              "RLIMIT_NPROC": (resource.RLIMIT_NPROC, policy.max_processes, None),
              "RLIMIT_CORE": (resource.RLIMIT_CORE, 0, None)}
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
    net = _CLONE_NEWNET if policy.block_network else 0
    if os.geteuid() == 0:
        for flag, name in ((net, "net"), (_CLONE_NEWIPC, "ipc")):
            if flag and _step(report, f"unshare({name})", _unshare, flag):
                report.namespaces.append(name)
        return
    uid, gid = os.getuid(), os.getgid()
    if _step(report, "unshare(user)", _unshare, _CLONE_NEWUSER | _CLONE_NEWIPC | net):
        report.namespaces += ["user", "ipc"] + (["net"] if net else [])
        for file, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            try:
                Path("/proc/self", file).write_text(text)
            except OSError as exc:
                report.notes.append(f"writing /proc/self/{file} failed: {exc.strerror}")


def _unshare(flags: int) -> None:
    if _LIBC.unshare(ctypes.c_int(flags)) != 0:
        _raise_errno()


def _seccomp_program(block_network: bool, allow_unix: bool) -> list[tuple[int, int, int, int]]:
    """The classic-BPF filter as (code, jt, jf, k); jump targets are resolved from labels."""
    eacces, eperm, enosys = _RET_ERRNO | errno.EACCES, _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    unix_ok = "allow" if allow_unix else "eacces"
    prog: list[tuple] = [
        (_LD_W_ABS, 0, 0, 4), (_JEQ, 0, "kill", _AUDIT_ARCH_X86_64),  # seccomp_data.arch
        (_LD_W_ABS, 0, 0, 0), (_JGE, "enosys", 0, _X32_SYSCALL_BIT),  # seccomp_data.nr
        (_JEQ, "socket", 0, _NR["socket"]), (_JEQ, "socketpair", 0, _NR["socketpair"]),
        (_JEQ, "clone", 0, _NR["clone"]),
    ]
    prog += [(_JEQ, "enosys", 0, _NR[n]) for n in ("io_uring_setup", "io_uring_enter", "io_uring_register", "clone3")]
    prog += [(_JEQ, "eperm", 0, _NR[n]) for n in ("unshare", "setns", "add_key", "request_key", "keyctl")]
    prog += [(_RET, 0, 0, _RET_ALLOW)]
    if block_network:  # args[i] low 32 bits live at 16 + 8 * i (little endian); int arguments use only those
        prog += [("socket",), (_LD_W_ABS, 0, 0, 16), (_JEQ, unix_ok, 0, 1), (_JEQ, 0, "eacces", 16),
                 (_LD_W_ABS, 0, 0, 32), (_JEQ, "allow", "eacces", 0),  # AF_NETLINK only with NETLINK_ROUTE
                 ("socketpair",), (_LD_W_ABS, 0, 0, 16), (_JEQ, 0, "eacces", 1), (_LD_W_ABS, 0, 0, 24),
                 (_AND, 0, 0, 0xF), (_JEQ, "allow", unix_ok, 1)]  # socketpair(AF_UNIX, SOCK_STREAM)
    else:
        prog += [("socket",), ("socketpair",), (_RET, 0, 0, _RET_ALLOW)]
    prog += [("clone",), (_LD_W_ABS, 0, 0, 16), (_JSET, "eperm", "allow", _CLONE_NS_FLAGS),
             ("allow",), (_RET, 0, 0, _RET_ALLOW), ("kill",), (_RET, 0, 0, _RET_KILL_PROCESS),
             ("eacces",), (_RET, 0, 0, eacces), ("eperm",), (_RET, 0, 0, eperm), ("enosys",), (_RET, 0, 0, enosys)]
    labels, code = {}, []
    for item in prog:
        if len(item) == 1:
            labels[item[0]] = len(code)
        else:
            code.append(item)
    out = []
    for i, (op, jt, jf, k) in enumerate(code):
        jt, jf = ((labels[j] - i - 1) if isinstance(j, str) else j for j in (jt, jf))
        out.append((op, jt, jf, k))
    return out


def _apply_seccomp(policy: SandboxPolicy) -> None:
    if platform.machine() != "x86_64":
        raise OSError(errno.ENOTSUP, f"the seccomp filter is written for x86_64, not {platform.machine()}")
    program = _seccomp_program(policy.block_network, policy.unix_sockets_allowed)
    filters = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *ins) for ins in program))
    fprog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(filters))
    _syscall(_NR["seccomp"], 1, 1, ctypes.c_char_p(fprog))  # SET_MODE_FILTER, FILTER_FLAG_TSYNC


def _apply_landlock(policy: SandboxPolicy, report: SandboxReport) -> bool:
    """Restrict the filesystem (and TCP, signals, abstract sockets); True when TCP bind/connect are handled."""
    abi = report.landlock_abi = landlock_abi()
    if abi is None:
        report.notes.append("Landlock unavailable: no filesystem isolation")
        return False
    handled = (1 << 13) - 1 | (_LL_REFER if abi >= 2 else 0) | (_LL_TRUNCATE if abi >= 3 else 0)
    handled |= _LL_IOCTL_DEV if abi >= 5 else 0
    net = _LL_NET_BIND_TCP | _LL_NET_CONNECT_TCP if abi >= 4 and policy.block_network else 0
    scoped = _LL_SCOPE_ABSTRACT_UNIX_SOCKET | _LL_SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("=QQQ", handled, net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    try:
        ruleset = _syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.c_char_p(attr), len(attr), 0)
    except OSError as exc:
        report.notes.append(f"landlock_create_ruleset failed: {exc.strerror}")
        return False
    try:
        write = handled & ~(_LL_MAKE_CHAR | _LL_MAKE_BLOCK | _LL_IOCTL_DEV)
        rules = [(p, _LL_READ) for p in policy.read_paths] + [(p, write) for p in policy.write_paths]
        rules += [(p, _LL_DEVICE) for p in policy.device_paths]
        rules += [(Path("/proc/self"), _LL_READ | _LL_WRITE_FILE | _LL_TRUNCATE)]  # own process; CUDA writes here
        missing = [str(p) for p, rights in rules if not _add_path_rule(ruleset, p, rights & handled, report)]
        if missing:
            report.notes.append(f"Landlock skipped missing paths: {', '.join(missing)}")
        _syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0)
    except OSError as exc:
        report.notes.append(f"landlock_restrict_self failed: {exc.strerror}")
        return False
    finally:
        os.close(ruleset)
    report.filesystem_isolated, report.signals_scoped = True, bool(scoped)
    if net == 0 and policy.block_network:
        report.notes.append(f"Landlock ABI {abi} < 4: TCP is not restricted by Landlock")
    return bool(net)


def _add_path_rule(ruleset: int, path: Path, rights: int, report: SandboxReport) -> bool:
    """Allow ``rights`` beneath ``path``; False if it does not exist. Other failures leave the rule out (stricter)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        report.notes.append(f"Landlock rule for {path} skipped: {exc.strerror}")
        return True
    pin = path == Path("/proc/self")  # procfs makes a new inode for /proc/<pid> if its dentry is evicted
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _LL_FILE_RIGHTS
        if rights:
            attr = struct.pack("=Qi", rights, fd)  # packed struct landlock_path_beneath_attr (12 bytes)
            _syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.c_char_p(attr), 0)
    except OSError as exc:
        report.notes.append(f"Landlock rule for {path} skipped: {exc.strerror}")
        pin = False
    finally:
        if pin:
            _PINNED_FDS.append(fd)
        else:
            os.close(fd)
    return True


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _drop_capabilities(report: SandboxReport) -> None:
    _step(report, "clearing ambient capabilities", _prctl, _PR_CAP_AMBIENT, 4)  # PR_CAP_AMBIENT_CLEAR_ALL
    if os.geteuid() == 0 or "user" in report.namespaces:
        _step(report, "PR_SET_SECUREBITS", _prctl, _PR_SET_SECUREBITS, _SECBITS_LOCKED_NOROOT)
    for cap in range(64):
        try:
            _prctl(_PR_CAPBSET_DROP, cap)
        except OSError as exc:  # EINVAL: past the kernel's last capability
            if exc.errno != errno.EINVAL:
                report.notes.append(f"PR_CAPBSET_DROP failed: {exc.strerror}; the bounding set is kept")
            break
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3, all sets zero
    if _LIBC.capset(ctypes.byref(header), data) != 0:
        report.notes.append(f"capset failed: {os.strerror(ctypes.get_errno())}")
    if _LIBC.capget(ctypes.byref(header), data) != 0:
        report.notes.append(f"capget failed: {os.strerror(ctypes.get_errno())}")
        return
    # the ambient set is a subset of permitted, so it is empty too once permitted is
    report.capabilities_dropped = not any(d.effective or d.permitted or d.inheritable for d in data)
