"""harness.core.threads: the cores available from the affinity mask and the cgroup quota (v1 and v2 trees written here),
the user's OMP_NUM_THREADS winning, and a real sandboxed worker running with the parent's thread count."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core import threads
from harness.core.threads import Cores, Threads, cgroup_quota, plan, thread_env

SUBMISSIONS = Path(__file__).parent / "fixtures" / "submissions"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_is_the_tightest_level_of_the_path(tmp_path):
    root = tmp_path / "cgroup"
    _write(root / "cpu.max", "max 100000\n")
    _write(root / "jobs" / "cpu.max", "300000 100000\n")
    _write(root / "jobs" / "mine" / "cpu.max", "150000 100000\n")
    proc = tmp_path / "cgroup.txt"
    _write(proc, "0::/jobs/mine\n")
    assert cgroup_quota(root, proc) == 1.5
    _write(root / "jobs" / "cpu.max", "50000 100000\n")  # a parent's limit applies to its children
    assert cgroup_quota(root, proc) == 0.5
    _write(proc, "0::/\n")  # a container's view: its own cgroup is the mount
    assert cgroup_quota(root, proc) is None
    _write(proc, "0::/elsewhere\n")  # a path this mount does not show: the mount's own limit
    _write(root / "cpu.max", "200000 100000\n")
    assert cgroup_quota(root, proc) == 2.0


def test_cgroup_v1_quota_and_no_quota(tmp_path):
    root = tmp_path / "cgroup"
    _write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    _write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    _write(root / "cpu,cpuacct" / "box" / "cpu.cfs_quota_us", "250000\n")
    _write(root / "cpu,cpuacct" / "box" / "cpu.cfs_period_us", "100000\n")
    proc = tmp_path / "cgroup.txt"
    _write(proc, "5:memory:/box\n4:cpu,cpuacct:/box\n")
    assert cgroup_quota(root, proc) == 2.5
    _write(proc, "4:cpu,cpuacct:/\n")
    assert cgroup_quota(root, proc) is None
    assert cgroup_quota(root, tmp_path / "missing") is None


def test_the_user_setting_wins_and_the_cores_decide_otherwise():
    cores = Cores(affinity=16, quota=2.0)
    assert plan({}, cores) == Threads(2, cores, "cores")
    assert plan({"OMP_NUM_THREADS": "3"}, cores) == Threads(3, cores, "OMP_NUM_THREADS")
    assert plan({"OMP_NUM_THREADS": "0"}, cores).count == 2  # not a usable count: ignored
    assert plan({"OMP_NUM_THREADS": "four"}, cores).count == 2
    assert Threads(2, cores).describe() == "2 (2 cores available (affinity 16, cgroup quota 2))"
    env = thread_env(Threads(2, cores), {})
    assert env == {
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
        "OPENBLAS_NUM_THREADS": "2",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    assert thread_env(Threads(2, cores), {"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"


def test_apply_keeps_variables_already_set_and_sizes_torch():
    import torch

    before = torch.get_num_threads()
    environ = {"MKL_NUM_THREADS": "7"}
    try:
        threads.apply(Threads(1, Cores(4)), environ)
        assert environ["OMP_NUM_THREADS"] == "1" and environ["MKL_NUM_THREADS"] == "7"
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_a_sandboxed_worker_runs_the_parents_thread_count(monkeypatch):
    """The worker's torch pool and its OpenMP variables come from the parent's decision, whatever the parent's own
    environment says (a submission that prints them: its prints reach the channel's stderr)."""
    from harness.pipeline.channels import WorkerLimits, open_channel
    from harness.worker.protocol import ModelRef, WorkerConfig, load_request

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    count = min(2, threads.cores().available)  # torch caps its pool at the CPUs there are
    monkeypatch.setattr(threads, "_DECIDED", [Threads(count, Cores(count))])
    channel = open_channel(WorkerLimits(memory_limit="4G"), {"prints_threads.py": SUBMISSIONS / "prints_threads.py"})
    try:
        config = WorkerConfig(ModelRef(submission=str(channel.model_root / "prints_threads.py")), "cpu", False)
        assert channel.request(load_request(config), budget=120)["op"] == "loaded"
    finally:
        channel.close()
    printed = "\n".join(channel.stderr_tail)
    assert f"threads={count} OMP_NUM_THREADS={count} OMP_WAIT_POLICY=PASSIVE" in printed
