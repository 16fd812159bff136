"""A cgroup v2 per worker, when the harness can make one: ``memory.max`` (swap off) and ``pids.max`` for the worker
and everything it starts, together, which per-process rlimits cannot give (a worker's forked children each get
their own address-space limit).

The harness can make one when the cgroup v2 hierarchy is mounted and its own cgroup already delegates the
``memory`` and ``pids`` controllers to children (``cgroup.subtree_control``) and is writable by it: e.g. as root in
the root cgroup of a cgroup-v2 host, or in a delegated systemd scope. Elsewhere (cgroup v1 or hybrid hosts, most
containers) :func:`create` returns None and the worker relies on its rlimits: ``RLIMIT_NPROC`` for its own user
(harness.worker.sandbox) bounds how many processes share the memory limit of each. The parent makes the group
(:func:`create`), the worker joins it before its first fork (:func:`join`), the parent removes it after the worker
ended (:func:`remove`) and tells an out-of-memory kill from other deaths (:func:`oom_killed`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

PREFIX = "robint-worker-"
_CONTROLLERS = ("memory", "pids")


def own_group() -> Path | None:
    """This process's cgroup v2 directory if it delegates memory and pids to children and is writable, else None."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    mount = next((line.split()[4] for line in mounts if " - cgroup2 " in line), None)
    path = next((line[3:] for line in lines if line.startswith("0::")), None)
    if mount is None or path is None:
        return None
    group = Path(mount) / path.lstrip("/")
    try:
        delegated = (group / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    if not all(c in delegated for c in _CONTROLLERS) or not os.access(group, os.W_OK):
        return None
    return group


def create(memory_bytes: int | None, max_processes: int | None) -> Path | None:
    """A new cgroup for one worker under :func:`own_group` with ``memory.max`` = ``memory_bytes`` (and no swap),
    ``pids.max`` = ``max_processes`` and the whole group killed on an out-of-memory event; None when the harness
    cannot make one (nothing is left behind then)."""
    parent = own_group()
    if parent is None or (memory_bytes is None and max_processes is None):
        return None
    group = parent / f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        group.mkdir(mode=0o755)
    except OSError:
        return None
    try:
        if memory_bytes is not None:
            (group / "memory.max").write_text(str(memory_bytes))
            _optional(group / "memory.swap.max", "0")
            _optional(group / "memory.oom.group", "1")
        if max_processes is not None:
            (group / "pids.max").write_text(str(max_processes))
    except OSError:
        remove(group)
        return None
    return group


def join(group: Path) -> None:
    """Move the calling process (and so everything it will start) into ``group``."""
    (group / "cgroup.procs").write_text("0")


def oom_killed(group: Path | None) -> bool:
    """Whether the kernel killed a process of ``group`` for exceeding its memory limit."""
    if group is None:
        return False
    try:
        events = dict(line.split() for line in (group / "memory.events").read_text().splitlines())
    except (OSError, ValueError):
        return False
    return int(events.get("oom_kill", "0")) > 0


def remove(group: Path | None, wait_s: float = 5.0) -> None:
    """Kill what is left in ``group`` and remove it (a no-op for None)."""
    if group is None:
        return
    _optional(group / "cgroup.kill", "1")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)


def _optional(path: Path, value: str) -> None:
    with contextlib.suppress(OSError):
        path.write_text(value)
