"""Everything a submission starts dies with its run, and leaves no files behind.

The worker command (``python -I -m harness.worker``) calls :func:`supervise` before anything else. It forks: the
original process stays outside as a small **supervisor**, the child becomes the worker, which then sandboxes
itself (harness.worker.sandbox) and runs the submission.

- **No descendant survives the worker.** The worker runs in a new PID namespace (as root, or inside a new user
  namespace) under a minimal init (PID 1) that reaps orphans; when the worker ends, init exits, and the kernel kills
  every process left in the namespace, daemons that double-forked and called ``setsid`` included. Where
  namespaces are unavailable the supervisor is a child subreaper instead: orphans are re-parented to it, and it
  kills every remaining descendant when the worker ends.
- **The worker dies with its parent.** The supervisor gets ``SIGTERM`` when the harness process dies
  (``PR_SET_PDEATHSIG``) and checks its parent once a second (a watchdog, for the window before the signal was
  armed); either way it kills the worker, removes the worker's temporary directory and exits. Init and the worker
  get ``SIGKILL`` when their parent dies, which takes the PID namespace down with them.
- **The supervisor relays the worker's exit** (status, or the signal that killed it), so the parent's diagnosis of
  a crash (harness.worker.channel) sees the worker's own.
- **Temporary directories** are named after the harness process that made them (pid and start time); each new
  channel removes those whose harness process is gone (:func:`sweep_stale_worker_dirs`), e.g. after ``kill -9``.
- **As root, the worker runs as an unprivileged user of its own** (an unused uid, :func:`unprivileged_user`;
  :func:`drop_privileges`), so files only root may read are out of reach, ``RLIMIT_NPROC`` counts this worker's
  processes and threads alone, and no two workers share a user. Directories that user cannot traverse but the
  worker needs (a Python under ``/root/.pyenv``) are covered, in the worker's own mount namespace, by an empty tmpfs
  into which only the needed paths are bind-mounted; the needed paths themselves must be readable by that user,
  else the run stops with the path and the fix. The model's files reach it as a private copy it owns
  (:func:`private_copy`).

One module because the supervisor, its cleanup and the checks on the parent's death form one protocol between
two processes, which is easier to check when read in one place.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import resource
import secrets
import select
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.worker import linux

PREFIX = "robint-worker-"
_NAME = re.compile(rf"^{PREFIX}(\d+)-(\d+)-[0-9a-f]+$")
_LEGACY_AGE_S = 24 * 3600  # unnamed directories of older versions are removed after a day


_REPARENT_S = 0.5  # how long a signalled supervisor waits to see whether its harness is gone (reparented)


class _ParentGone(Exception):
    pass


# --- the supervisor --------------------------------------------------------------------------------------------


def supervise(
    parent_pid: int | None, cleanup: Path | None, pid_namespace: bool = True, orphaned: list[Path] | None = None
) -> str:
    """Fork the worker off this process, which stays behind as its supervisor and never returns; returns, in the
    worker, how its descendants are contained: ``"pid-namespace"`` or ``"subreaper"``.

    In a PID namespace the supervisor's child is the namespace's init (PID 1: it reaps orphans and reports the
    worker's exit), and the worker is init's child, so it keeps the ordinary signal semantics (a namespace's init
    ignores signals it has no handler for, SIGXCPU of ``--cpu-limit`` included). ``pid_namespace=False`` asks for
    the subreaper: a CUDA worker cannot initialise the driver in a PID namespace that shares the host's procfs
    (``cudaGetDeviceCount`` error 304, seen on an H200 where the other sandbox layers initialised it).

    ``cleanup`` (the worker's directories) is removed when the worker ends; ``orphaned`` (what the harness keeps
    for the run: the master copy of the model's files) only when the harness died first."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError):
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent_pid is not None and os.getppid() != parent_pid:  # the harness died before the signal was armed
        for path in [*([cleanup] if cleanup is not None else []), *(orphaned or [])]:
            remove_tree(path)
        os._exit(1)
    mode = "pid-namespace"
    try:
        if not pid_namespace:
            raise OSError("a PID namespace was not asked for")
        _new_pid_namespace()
    except OSError:
        mode = "subreaper"
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    status_read, status_write = os.pipe()  # init -> supervisor: the worker's wait status
    alive_read, alive_write = os.pipe()  # open exactly as long as the supervisor lives
    pid = os.fork()
    if pid == 0:
        os.close(status_read)
        _die_with_parent(alive_read, alive_write)
        if mode == "pid-namespace":
            _init(status_write)  # returns in the worker only, with the pipe closed
        else:
            os.close(status_write)
        return mode
    os.close(status_write)
    os.close(alive_read)
    for fd in (0, 1):  # the protocol pipes belong to the worker alone
        os.close(fd)
    _supervisor_loop(pid, parent_pid, cleanup, mode, status_read, orphaned or [])
    raise AssertionError("unreachable")


def _die_with_parent(alive_read: int, alive_write: int) -> None:
    """In a new child: SIGKILL when the parent dies, and exit now if it already has (a hang-up on ``alive``)."""
    os.close(alive_write)
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    poll = select.poll()
    poll.register(alive_read, select.POLLIN)
    if poll.poll(0):
        os._exit(1)
    os.close(alive_read)


def _init(status_write: int) -> None:
    """PID 1 of the worker's namespace: fork the worker (which returns from here), then reap every process that
    ends in the namespace until the worker does, report its wait status and exit, which kills what is left."""
    alive_read, alive_write = os.pipe()
    worker = os.fork()
    if worker == 0:
        os.close(status_write)
        _die_with_parent(alive_read, alive_write)
        return
    os.close(alive_read)
    for fd in (0, 1):
        os.close(fd)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)
        if pid == worker:
            os.write(status_write, str(status).encode())
            os._exit(0)


def _new_pid_namespace() -> None:
    if os.geteuid() == 0:
        linux.unshare(linux.CLONE_NEWPID)
        return
    uid, gid = os.getuid(), os.getgid()
    linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWPID)
    for file, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        Path("/proc/self", file).write_text(text)


def _supervisor_loop(
    pid: int, parent_pid: int | None, cleanup: Path | None, mode: str, status_read: int, orphaned: list[Path]
) -> None:
    stopping = False

    def parent_gone(*_: Any) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise _ParentGone

    def watchdog(*_: Any) -> None:
        if parent_pid is not None and os.getppid() != parent_pid:
            parent_gone()

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, parent_gone)
    signal.signal(signal.SIGALRM, watchdog)
    signal.setitimer(signal.ITIMER_REAL, 1.0, 1.0)
    status = None
    while status is None:
        try:
            _, status = os.waitpid(pid, 0)
        except _ParentGone:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        except ChildProcessError:
            status = 0
    signal.setitimer(signal.ITIMER_REAL, 0)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, signal.SIG_IGN)
    reported = os.read(status_read, 32)  # the worker's status, from init (empty: init was killed, or no init)
    status = int(reported) if reported.strip().isdigit() else status
    if mode == "subreaper":
        kill_descendants()
    if cleanup is not None:
        remove_tree(cleanup)
    if stopping and parent_pid is not None:
        # stopped by a signal: the death signal of a harness killed with SIGKILL can come while its other threads
        # are still exiting (this process is then the child of one of them: getppid() unchanged), so give it a moment
        deadline = time.monotonic() + _REPARENT_S
        while os.getppid() == parent_pid and time.monotonic() < deadline:
            time.sleep(0.02)
    if parent_pid is not None and os.getppid() != parent_pid:  # the harness is gone: remove its run's files too
        for path in orphaned:
            remove_tree(path)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        with contextlib.suppress(OSError, ValueError):  # SIGKILL and SIGSTOP keep their default action anyway
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        time.sleep(1)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def kill_descendants(rounds: int = 50) -> None:
    """SIGKILL every descendant of this process and reap them (repeated while new ones appear)."""
    me = os.getpid()
    for _ in range(rounds):
        parents = _parent_map()
        victims = [pid for pid in parents if pid != me and _descends_from(pid, me, parents)]
        if not victims:
            break
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        _reap(0.5)
    _reap(0)


def _reap(wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.01)


def _parent_map() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(text.rsplit(")", 1)[1].split()[1])
    return parents


def _descends_from(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    seen = set()
    while pid in parents and pid not in seen:
        seen.add(pid)
        pid = parents[pid]
        if pid == ancestor:
            return True
    return False


# --- the unprivileged user -------------------------------------------------------------------------------------


WORKER_UIDS = (0x7E000000, 1 << 20)  # (first, count): the ids a worker started by root may run as


def unprivileged_user() -> tuple[int, int] | None:
    """(uid, gid) a new worker runs as when the harness runs as root, else None (it keeps the user, and its user
    namespace counts its processes alone). As root: an unused id of its own from :data:`WORKER_UIDS`, with no
    passwd or group entry and no files, so it reads only what everyone may read, ``RLIMIT_NPROC`` counts this
    worker's processes only (not those of ``nobody`` elsewhere on the machine), and two workers never share a
    user (the attacking worker and the fresh one cannot signal or trace each other, or share what they own)."""
    if os.geteuid() != 0:
        return None
    first, count = WORKER_UIDS
    while True:
        uid = first + secrets.randbelow(count)
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(uid)
        except KeyError:
            return uid, uid


class UnreachablePath(PermissionError):
    """A path the worker needs is out of the unprivileged user's reach: ``problem`` and ``fix`` for one line."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} -- {fix}")
        self.problem, self.fix = problem, fix


def drop_privileges(policy: Any, report: Any) -> None:
    """As root, in a fresh mount namespace: make the policy's paths reachable for ``policy.run_as`` (tmpfs over
    the directories it cannot traverse, the needed paths bind-mounted back), then switch to that user, re-arm the
    parent-death signal and check that the required paths are readable and the write paths writable.

    Raises:
        UnreachablePath: naming the first path the user cannot use, with the fix.
    """
    uid, gid = policy.run_as
    needed = [*policy.read_paths, *policy.write_paths, *policy.device_paths, *policy.required_paths]
    if "mnt" in report.namespaces:
        try:
            linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
            exposed = expose(needed, uid, gid)
            if exposed:
                report.notes.append(f"covered for uid {uid}: {', '.join(str(p) for p in exposed)}")
        except OSError as exc:
            report.notes.append(f"mount namespace setup failed: {exc.strerror or exc}")
    linux.drop_bounding_set(report.notes)  # needs CAP_SETPCAP, which the user switch gives up
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    linux.prctl(linux.PR_SET_DUMPABLE, 1)  # keep /proc/self owned by the worker, which reads it
    if policy.parent_death_signal:
        linux.prctl(linux.PR_SET_PDEATHSIG, policy.parent_death_signal)  # cleared by the user switch
    checks = [(p, os.R_OK) for p in policy.required_paths] + [(p, os.W_OK) for p in policy.write_paths]
    for path, mode in checks:
        if path.exists() and not os.access(path, mode | (os.X_OK if path.is_dir() else 0)):
            what = "write to" if mode == os.W_OK else "read"
            raise UnreachablePath(
                f"robint-bench runs as root, so its worker runs as uid {uid}, which cannot {what} {path}",
                f"make it {'writable' if mode == os.W_OK else 'readable'} by others (chmod -R o+rX), "
                "or run robint-bench as an unprivileged user",
            )


def expose(paths: list[Path], uid: int, gid: int) -> list[Path]:
    """In the caller's (private) mount namespace, cover each topmost directory ``uid`` cannot traverse on the way to
    one of ``paths`` with an empty tmpfs (mode 0755) and bind-mount the paths beneath it back; returns the covered
    directories. The paths' own permissions are unchanged."""
    real = sorted({Path(os.path.realpath(p)) for p in paths if os.path.lexists(p)}, key=lambda p: len(p.parts))
    covered: dict[Path, list[Path]] = {}
    for path in real:
        for ancestor in [*reversed(path.parents)][1:]:
            if ancestor in covered:
                covered[ancestor].append(path)
                break
            if not _traversable(ancestor, uid, gid):
                covered[ancestor] = [path]
                break
    for top, beneath in covered.items():
        outermost = [p for p in beneath if not any(q in p.parents for q in beneath)]
        fds = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p in outermost}
        try:
            linux.mount("tmpfs", str(top), "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "mode=0755,size=1m")
            for path, fd in fds.items():
                _mountpoint(path, stat.S_ISDIR(os.fstat(fd).st_mode))
                linux.mount(f"/proc/self/fd/{fd}", str(path), None, linux.MS_BIND | linux.MS_REC)
        finally:
            for fd in fds.values():
                os.close(fd)
    return list(covered)


def _traversable(directory: Path, uid: int, gid: int) -> bool:
    st = os.stat(directory)
    bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
    return bool(st.st_mode & bit)


def _mountpoint(path: Path, is_dir: bool) -> None:
    os.makedirs(path if is_dir else path.parent, mode=0o755, exist_ok=True)
    if not is_dir and not path.exists():
        path.touch(mode=0o644)


# --- temporary directories -------------------------------------------------------------------------------------


def make_worker_dir(owner: tuple[int, int] | None = None) -> Path:
    """A new temporary directory for one worker, named after this process (pid and start time) so that a later
    run can tell whether its creator is gone; owned by ``owner`` (uid, gid) when given."""
    name = f"{PREFIX}{os.getpid()}-{_start_time(os.getpid())}-{secrets.token_hex(4)}"
    path = Path(tempfile.gettempdir()) / name
    path.mkdir(mode=0o700)
    if owner is not None:
        os.chown(path, *owner)
    return path


def private_copy(files: Mapping[str, Path], owner: tuple[int, int] | None = None) -> Path:
    """A new directory (named as :func:`make_worker_dir`'s) holding a copy of each of ``files`` (its name inside
    the directory -> the file to copy): inodes of its own, owned by ``owner`` (the worker's user; None: this
    process's), readable by that user and root alone (directories 0500, files 0400), writable by no one."""
    root = make_worker_dir()
    try:
        for name, source in files.items():
            target = root / name
            if root not in target.resolve().parents:
                raise ValueError(f"{name!r} would leave the copy's directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        for path in sorted(root.rglob("*"), key=lambda p: -len(p.parts)) + [root]:
            if owner is not None:
                os.chown(path, *owner)
            os.chmod(path, 0o500 if path.is_dir() else 0o400)
    except BaseException:
        remove_tree(root)
        raise
    return root


def sweep_stale_worker_dirs(root: Path | None = None) -> list[Path]:
    """Remove the worker directories whose harness process is gone (killed before it could clean up); returns
    them. Directories of live processes are left alone; unnamed ones of older versions after a day."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    with contextlib.suppress(OSError):
        for entry in root.iterdir():
            if not entry.name.startswith(PREFIX) or entry.is_symlink() or not entry.is_dir():
                continue
            match = _NAME.match(entry.name)
            if match is not None:
                stale = _start_time(int(match[1])) != int(match[2])
            else:
                stale = time.time() - entry.stat().st_mtime > _LEGACY_AGE_S
            if stale:
                remove_tree(entry)
                removed.append(entry)
    return removed


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything beneath it, also what a worker made unreadable (chmod 000), never following
    a symbolic link out of it."""

    def retry(function: Any, name: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            parent = os.path.dirname(name)
            os.chmod(parent, stat.S_IRWXU)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, stat.S_IRWXU)
                shutil.rmtree(name, ignore_errors=True)
            else:
                function(name)

    if os.path.lexists(path):
        shutil.rmtree(path, onerror=retry)


def _start_time(pid: int) -> int:
    """The process's start time (clock ticks since boot; /proc/<pid>/stat field 22), or -1 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(text.rsplit(")", 1)[1].split()[19])
