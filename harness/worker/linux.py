"""The Linux system-call layer of the worker sandbox: prctl, namespaces, mounts, seccomp-bpf, Landlock and
capabilities, through ctypes. Each function does one kernel operation and raises ``OSError`` when it fails; the
policy (what to apply, what a failure means) lives in harness.worker.sandbox and harness.worker.containment.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
import struct
from pathlib import Path

# Landlock (include/uapi/linux/landlock.h); syscall numbers are the same on every architecture.
_SYS_LANDLOCK_CREATE_RULESET, _SYS_LANDLOCK_ADD_RULE, _SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LL_EXECUTE, LL_WRITE_FILE, LL_READ_FILE, LL_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
LL_MAKE_CHAR, LL_MAKE_BLOCK = 1 << 6, 1 << 11
LL_REFER, LL_TRUNCATE, LL_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
LL_FILE_RIGHTS = LL_EXECUTE | LL_WRITE_FILE | LL_READ_FILE | LL_TRUNCATE | LL_IOCTL_DEV
LL_READ = LL_EXECUTE | LL_READ_FILE | LL_READ_DIR
LL_DEVICE = LL_READ_FILE | LL_WRITE_FILE | LL_TRUNCATE | LL_IOCTL_DEV | LL_READ_DIR
_LL_NET_BIND_TCP, _LL_NET_CONNECT_TCP = 1 << 0, 1 << 1
_LL_SCOPE_ABSTRACT_UNIX_SOCKET, _LL_SCOPE_SIGNAL = 1 << 0, 1 << 1

# x86_64 syscall numbers and seccomp/BPF constants.
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_NR = {
    "socket": 41,
    "socketpair": 53,
    "clone": 56,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "setns": 308,
    "seccomp": 317,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "clone3": 435,
}
# changing a file's metadata (mode, owner, times, extended attributes): Landlock does not govern it, and a worker
# could otherwise leave a message in the times or attributes of a file its user owns for a later worker to stat
_METADATA_WRITES = {
    "chmod": 90,
    "fchmod": 91,
    "chown": 92,
    "fchown": 93,
    "lchown": 94,
    "utime": 132,
    "setxattr": 188,
    "lsetxattr": 189,
    "fsetxattr": 190,
    "removexattr": 197,
    "lremovexattr": 198,
    "fremovexattr": 199,
    "utimes": 235,
    "fchownat": 260,
    "futimesat": 261,
    "fchmodat": 268,
    "utimensat": 280,
    "fchmodat2": 452,
}
_RET_KILL_PROCESS, _RET_ERRNO, _RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
_LD_W_ABS, _JEQ, _JGE, _JSET, _AND, _RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06
_CLONE_NS_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = (
    0x00020000,
    0x08000000,
    0x10000000,
    0x20000000,
    0x40000000,
)

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36
_PR_CAPBSET_DROP, _PR_SET_SECUREBITS, PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT = 24, 28, 38, 47
_SECBITS_LOCKED_NOROOT = 0x01 | 0x02 | 0x20 | 0x40 | 0x80  # NOROOT, KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE (+locks)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long
_PINNED_FDS: list[int] = []  # O_PATH fd of /proc/self kept open so its Landlock rule keeps matching


def raise_errno() -> None:
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err))


def syscall(nr: int, *args: object) -> int:
    cargs = [ctypes.c_ulong(a) if isinstance(a, int) else a for a in args]
    ret = _LIBC.syscall(ctypes.c_long(nr), *cargs)
    if ret < 0:
        raise_errno()
    return int(ret)


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    if _LIBC.prctl(ctypes.c_int(option), *(ctypes.c_ulong(a) for a in (arg2, arg3, 0, 0))) != 0:
        raise_errno()


def unshare(flags: int) -> None:
    if _LIBC.unshare(ctypes.c_int(flags)) != 0:
        raise_errno()


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def arg(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    if _LIBC.mount(arg(source), arg(target), arg(fstype), ctypes.c_ulong(flags), arg(data)) != 0:
        raise_errno()


# --- seccomp ---------------------------------------------------------------------------------------------------


def seccomp_program(block_network: bool, allow_unix: bool) -> list[tuple[int, int, int, int]]:
    """The classic-BPF filter as (code, jt, jf, k); jump targets are resolved from labels."""
    eacces, eperm, enosys = _RET_ERRNO | errno.EACCES, _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    unix_ok = "allow" if allow_unix else "eacces"
    prog: list[tuple] = [
        (_LD_W_ABS, 0, 0, 4),
        (_JEQ, 0, "kill", _AUDIT_ARCH_X86_64),  # seccomp_data.arch
        (_LD_W_ABS, 0, 0, 0),
        (_JGE, "enosys", 0, _X32_SYSCALL_BIT),  # seccomp_data.nr
        (_JEQ, "socket", 0, _NR["socket"]),
        (_JEQ, "socketpair", 0, _NR["socketpair"]),
        (_JEQ, "clone", 0, _NR["clone"]),
    ]
    prog += [(_JEQ, "enosys", 0, _NR[n]) for n in ("io_uring_setup", "io_uring_enter", "io_uring_register", "clone3")]
    prog += [(_JEQ, "eperm", 0, _NR[n]) for n in ("unshare", "setns", "add_key", "request_key", "keyctl")]
    prog += [(_JEQ, "eperm", 0, nr) for nr in _METADATA_WRITES.values()]
    prog += [(_RET, 0, 0, _RET_ALLOW)]
    if block_network:  # args[i] low 32 bits live at 16 + 8 * i (little endian); int arguments use only those
        prog += [
            ("socket",),
            (_LD_W_ABS, 0, 0, 16),
            (_JEQ, unix_ok, 0, 1),
            (_JEQ, 0, "eacces", 16),
            (_LD_W_ABS, 0, 0, 32),
            (_JEQ, "allow", "eacces", 0),  # AF_NETLINK only with NETLINK_ROUTE
            ("socketpair",),
            (_LD_W_ABS, 0, 0, 16),
            (_JEQ, 0, "eacces", 1),
            (_LD_W_ABS, 0, 0, 24),
            (_AND, 0, 0, 0xF),
            (_JEQ, "allow", unix_ok, 1),
        ]  # socketpair(AF_UNIX, SOCK_STREAM)
    else:
        prog += [("socket",), ("socketpair",), (_RET, 0, 0, _RET_ALLOW)]
    prog += [
        ("clone",),
        (_LD_W_ABS, 0, 0, 16),
        (_JSET, "eperm", "allow", _CLONE_NS_FLAGS),
        ("allow",),
        (_RET, 0, 0, _RET_ALLOW),
        ("kill",),
        (_RET, 0, 0, _RET_KILL_PROCESS),
        ("eacces",),
        (_RET, 0, 0, eacces),
        ("eperm",),
        (_RET, 0, 0, eperm),
        ("enosys",),
        (_RET, 0, 0, enosys),
    ]
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


def install_seccomp(block_network: bool, allow_unix: bool) -> None:
    """Install :func:`seccomp_program` on every thread (needs no_new_privs); x86_64 only."""
    if platform.machine() != "x86_64":
        raise OSError(errno.ENOTSUP, f"the seccomp filter is written for x86_64, not {platform.machine()}")
    program = seccomp_program(block_network, allow_unix)
    filters = ctypes.create_string_buffer(b"".join(struct.pack("=HBBI", *ins) for ins in program))
    fprog = struct.pack("=HxxxxxxQ", len(program), ctypes.addressof(filters))
    syscall(_NR["seccomp"], 1, 1, ctypes.c_char_p(fprog))  # SET_MODE_FILTER, FILTER_FLAG_TSYNC


# --- Landlock --------------------------------------------------------------------------------------------------


def landlock_abi() -> int | None:
    """The kernel's Landlock ABI version, or ``None`` when Landlock is missing or disabled."""
    ret = _LIBC.syscall(ctypes.c_long(_SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_ulong(0), ctypes.c_ulong(1))
    return int(ret) if ret > 0 else None


def landlock_restrict(
    read: list[Path], write: list[Path], devices: list[Path], *, block_network: bool, notes: list[str]
) -> tuple[bool, bool, bool]:
    """Restrict the filesystem to the given paths (plus the process's own ``/proc/self``), TCP (ABI >= 4), signals
    and abstract unix sockets (ABI >= 6). Returns (restricted, TCP handled, scoped); problems go to ``notes``."""
    abi = landlock_abi()
    if abi is None:
        notes.append("Landlock unavailable: no filesystem isolation")
        return False, False, False
    handled = (1 << 13) - 1 | (LL_REFER if abi >= 2 else 0) | (LL_TRUNCATE if abi >= 3 else 0)
    handled |= LL_IOCTL_DEV if abi >= 5 else 0
    net = _LL_NET_BIND_TCP | _LL_NET_CONNECT_TCP if abi >= 4 and block_network else 0
    scoped = _LL_SCOPE_ABSTRACT_UNIX_SOCKET | _LL_SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("=QQQ", handled, net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    try:
        ruleset = syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.c_char_p(attr), len(attr), 0)
    except OSError as exc:
        notes.append(f"landlock_create_ruleset failed: {exc.strerror}")
        return False, False, False
    try:
        write_rights = handled & ~(LL_MAKE_CHAR | LL_MAKE_BLOCK | LL_IOCTL_DEV)
        rules = [(p, LL_READ) for p in read] + [(p, write_rights) for p in write] + [(p, LL_DEVICE) for p in devices]
        rules += [(Path("/proc/self"), LL_READ | LL_WRITE_FILE | LL_TRUNCATE)]  # own process; CUDA writes here
        missing = [str(p) for p, rights in rules if not _add_path_rule(ruleset, p, rights & handled, notes)]
        if missing:
            notes.append(f"Landlock skipped missing paths: {', '.join(missing)}")
        syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0)
    except OSError as exc:
        notes.append(f"landlock_restrict_self failed: {exc.strerror}")
        return False, False, False
    finally:
        os.close(ruleset)
    if net == 0 and block_network:
        notes.append(f"Landlock ABI {abi} < 4: TCP is not restricted by Landlock")
    return True, bool(net), bool(scoped)


def _add_path_rule(ruleset: int, path: Path, rights: int, notes: list[str]) -> bool:
    """Allow ``rights`` beneath ``path``; False if it does not exist. Other failures leave the rule out (stricter)."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        notes.append(f"Landlock rule for {path} skipped: {exc.strerror}")
        return True
    pin = path == Path("/proc/self")  # procfs makes a new inode for /proc/<pid> if its dentry is evicted
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= LL_FILE_RIGHTS
        if rights:
            attr = struct.pack("=Qi", rights, fd)  # packed struct landlock_path_beneath_attr (12 bytes)
            syscall(_SYS_LANDLOCK_ADD_RULE, ruleset, 1, ctypes.c_char_p(attr), 0)
    except OSError as exc:
        notes.append(f"Landlock rule for {path} skipped: {exc.strerror}")
        pin = False
    finally:
        if pin:
            _PINNED_FDS.append(fd)
        else:
            os.close(fd)
    return True


# --- capabilities ----------------------------------------------------------------------------------------------


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_bounding_set(notes: list[str]) -> None:
    """Empty the capability bounding set (needs CAP_SETPCAP: before any switch to an unprivileged user)."""
    for cap in range(64):
        try:
            prctl(_PR_CAPBSET_DROP, cap)
        except OSError as exc:  # EINVAL: past the kernel's last capability; EPERM: no CAP_SETPCAP left
            if exc.errno != errno.EINVAL and _bounding_set() != 0:
                notes.append(f"PR_CAPBSET_DROP failed: {exc.strerror}; the bounding set is kept")
            break


def _bounding_set() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    return -1


def drop_capabilities(notes: list[str], *, lock_noroot: bool) -> bool:
    """Clear the ambient, bounding, effective, permitted and inheritable sets (and lock ``SECBIT_NOROOT`` with
    ``lock_noroot``); True when no capability is left."""
    for what, args in [("clearing ambient capabilities", (_PR_CAP_AMBIENT, 4))] + (  # PR_CAP_AMBIENT_CLEAR_ALL
        [("PR_SET_SECUREBITS", (_PR_SET_SECUREBITS, _SECBITS_LOCKED_NOROOT))] if lock_noroot else []
    ):
        try:
            prctl(*args)
        except OSError as exc:
            notes.append(f"{what} failed: {exc.strerror or exc}")
    drop_bounding_set(notes)
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()  # _LINUX_CAPABILITY_VERSION_3, all sets zero
    if _LIBC.capset(ctypes.byref(header), data) != 0:
        notes.append(f"capset failed: {os.strerror(ctypes.get_errno())}")
    if _LIBC.capget(ctypes.byref(header), data) != 0:
        notes.append(f"capget failed: {os.strerror(ctypes.get_errno())}")
        return False
    # the ambient set is a subset of permitted, so it is empty too once permitted is
    return not any(d.effective or d.permitted or d.inheritable for d in data)
