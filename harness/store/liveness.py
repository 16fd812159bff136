"""Who is computing a running run, and whether that process is still alive (to tell running from interrupted)."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from pathlib import Path

STALE_AFTER = timedelta(minutes=30)  # a run on another host with no heartbeat for this long is interrupted


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "?"


def host() -> str:
    """This machine, distinguishing reboots (a pid is only meaningful within one boot)."""
    return f"{socket.gethostname()}:{_boot_id()}"


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (guards against pid reuse), or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def me() -> dict[str, object]:
    """The ownership columns for this process."""
    return {"owner_host": host(), "owner_pid": os.getpid(), "owner_start": process_start(os.getpid())}


def is_alive(
    owner_host: str | None, owner_pid: int | None, owner_start: str | None, heartbeat_at: datetime | None, now: datetime
) -> bool:
    """Whether the recorded owner of a running run still runs."""
    if owner_pid is None:
        return False
    if owner_host == host():
        return process_start(owner_pid) == owner_start
    return heartbeat_at is not None and now - heartbeat_at < STALE_AFTER
