"""Threads sized to the CPU cores this process may actually use, for the parent and every worker.

torch sizes its thread pool by the machine's cores, not by what the process is allowed: on a shared machine, in a
container with a CPU quota, or under a competing load, that oversubscribes the cores, and OpenMP threads that spin
at every barrier while another is descheduled make an attack several times slower (README, Usage). So:

- the cores available are the CPUs of the process's affinity mask (``sched_getaffinity``) capped by its cgroup's CPU
  quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, the tightest level of its path);
- the thread count is that, unless ``OMP_NUM_THREADS`` is set (the user's choice wins);
- OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE``, unless set): under a competing load a spinning
  thread only takes time from the one it waits for (``bench/threads.py`` measures both).

:func:`decide` plans once per process; :func:`thread_env` is the environment a worker is started with; :func:`apply`
sets this process's variables (before torch is imported) and torch's pool (after). Imports nothing heavy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Cores:
    """The CPUs this process may run on: ``affinity`` (its mask) and ``quota`` (its cgroup's CPU quota in cores,
    None when unlimited)."""

    affinity: int
    quota: float | None = None

    @property
    def available(self) -> int:
        """The mask capped by the quota (a fractional quota rounds up: 1.5 cores run 2 threads), at least 1.

        >>> Cores(16, 2.0).available, Cores(2).available, Cores(8, 0.5).available
        (2, 2, 1)
        """
        cap = self.affinity if self.quota is None else min(self.affinity, math.ceil(self.quota - 1e-9))
        return max(1, cap)

    def describe(self) -> str:
        """E.g. ``2 cores available (affinity 16, cgroup quota 2.0)``."""
        quota = "no cgroup quota" if self.quota is None else f"cgroup quota {self.quota:g}"
        n = self.available
        return f"{n} core{'s' if n != 1 else ''} available (affinity {self.affinity}, {quota})"


@dataclass(frozen=True)
class Threads:
    """The thread count of this process and its workers, and why: ``source`` is ``cores`` (sized to
    :class:`Cores`) or ``OMP_NUM_THREADS`` (set by the user)."""

    count: int
    cores: Cores
    source: str = "cores"

    def describe(self) -> str:
        """One line for the run's header, e.g. ``2 (2 cores available (affinity 2, no cgroup quota))``."""
        if self.source == "cores":
            return f"{self.count} ({self.cores.describe()})"
        return f"{self.count} (OMP_NUM_THREADS; {self.cores.describe()})"


def affinity() -> int:
    """CPUs in this process's affinity mask (``os.cpu_count()`` where the platform has no mask)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cgroup_quota(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> float | None:
    """The CPU quota of this process's cgroup in cores (quota / period), the tightest along its path to the root;
    None when there is none or it cannot be read. Reads cgroup v2 (``cpu.max``: ``"max 100000"`` or
    ``"200000 100000"``) and v1 (``cpu.cfs_quota_us``, -1 = none, and ``cpu.cfs_period_us``)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    quotas = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not hierarchy:
            continue
        if hierarchy == "0" and controllers == "":  # v2 unified hierarchy
            quotas += [_v2(d) for d in _levels(root, path)]
        elif "cpu" in controllers.split(","):
            for mount in (controllers, "cpu", "cpu,cpuacct"):
                if (root / mount).is_dir():
                    quotas += [_v1(d) for d in _levels(root / mount, path)]
                    break
    known = [q for q in quotas if q is not None]
    return min(known) if known else None


def _levels(mount: Path, path: str) -> list[Path]:
    """The cgroup directory of ``path`` under ``mount`` and each of its parents up to ``mount`` (a limit anywhere
    on the path applies); a path that is not there (another namespace's view) is read at the mount only."""
    parts = [p for p in path.strip().split("/") if p and p != ".."]
    directory = mount.joinpath(*parts) if parts else mount
    if not directory.is_dir():
        return [mount]
    levels = [directory]
    while directory != mount:
        directory = directory.parent
        levels.append(directory)
    return levels


def _v2(directory: Path) -> float | None:
    try:
        quota, _, period = (directory / "cpu.max").read_text().strip().partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100000)
    except (OSError, ValueError, ZeroDivisionError):
        return None


def _v1(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def cores() -> Cores:
    """This process's :class:`Cores`."""
    return Cores(affinity(), cgroup_quota())


def plan(environ: Mapping[str, str] | None = None, available: Cores | None = None) -> Threads:
    """The thread count: ``OMP_NUM_THREADS`` when it is set to a positive integer, else the cores available."""
    environ = os.environ if environ is None else environ
    available = cores() if available is None else available
    given = environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return Threads(int(given), available, "OMP_NUM_THREADS")
    return Threads(available.available, available)


_DECIDED: list[Threads] = []


def decide() -> Threads:
    """This process's :func:`plan`, made once (at the command line's start, before it sets ``OMP_NUM_THREADS`` for
    its workers) and the same on every later call."""
    if not _DECIDED:
        _DECIDED.append(plan())
    return _DECIDED[0]


def thread_env(threads: Threads, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a process of ``threads`` is started with: the thread count for OpenMP, MKL and OpenBLAS, and
    passive OpenMP waiting; a wait policy set in ``environ`` is kept."""
    environ = os.environ if environ is None else environ
    env = dict.fromkeys(THREAD_VARIABLES, str(threads.count))
    env["OMP_WAIT_POLICY"] = environ.get("OMP_WAIT_POLICY", "PASSIVE")
    return env


def apply(threads: Threads, environ: MutableMapping[str, str] | None = None) -> None:
    """Size this process: its thread variables (read by OpenMP when torch or numpy load; ones already set are
    kept) and, when torch is already imported, torch's intra-op pool."""
    import sys

    environ = os.environ if environ is None else environ
    for key, value in thread_env(threads, environ).items():
        environ.setdefault(key, value)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        torch.set_num_threads(threads.count)
