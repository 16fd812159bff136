"""One run over two torchrun ranks (gloo, CPU) stores exactly the rows of a single-process run; a rank killed mid-run
loses only its chunk in flight and the same command completes the run; more than one node refuses SQLite."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.core.config import RunConfig
from harness.pipeline.distributed import share, split_suite
from harness.pipeline.plan import Todo, attack_chunks
from harness.pipeline.resolve import resolve_suite
from tests.conftest import ROOT, SUBMISSIONS, run_cli
from tests.harness.store.postgres import count, new_database, rows, server

MODEL = str(SUBMISSIONS / "fmnist_pgd_linf.py")
# 4 chunks of 2; saliency and integrated gradients (randomised: uniform baselines) plus the five controls and the
# bounds: four explain units per rank
CONFIG = [
    "--model",
    MODEL,
    "--n-examples",
    "8",
    "--batch-size",
    "2",
    "--attack",
    "apgd-ce",
    "--methods",
    "saliency,integrated_gradients",
    "--method-option",
    "integrated_gradients.n_steps=8",
    "--method-option",
    "integrated_gradients.n_trials=2",
    "--metrics",
    "sparseness,abpc",
    "--n-explain",
    "2",
    "--quiet",
]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "harness"]


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env, **kwargs)


@pytest.fixture(scope="module")
def single_process(tmp_path_factory, data_dir):
    """The rows of the same run in one process (the reference both tests compare with)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('single') / 'one.db'}"
    done = _run([sys.executable, "-m", "harness", "run", *CONFIG, "--data-dir", str(data_dir), "--db", url])
    assert done.returncode == 0, done.stderr
    return rows(url)


@pytest.mark.slow
def test_two_ranks_store_the_rows_of_a_single_process_run(single_process, tmp_path, data_dir):
    url = f"sqlite:///{tmp_path / 'two.db'}"
    done = _run([*TORCHRUN, "run", *CONFIG, "--data-dir", str(data_dir), "--db", url])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("stored run") == 1  # rank 0 reports; rank 1's summary is not printed again
    examples, scores = rows(url)
    assert (examples, scores) == single_process
    # 2 methods x 2 metrics + 5 controls x 2 headline metrics + ABPC's floor and ceiling
    assert len(examples) == 8 and len(scores) == 16
    listing = run_cli("runs", "--db", url).stdout
    assert " complete " in listing and "examples 8/8" in listing
    assert count(url, "SELECT COUNT(*) FROM artifacts") == 0


def _rank_pids(agent: int) -> dict[int, int]:
    """torchrun's worker processes (children of its agent) by rank."""
    out = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            if int(fields["PPid"]) != agent:
                continue
            environ = (status.parent / "environ").read_bytes().split(b"\0")
        except (OSError, KeyError, ValueError):
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                out[int(item[5:])] = int(status.parent.name)
    return out


@pytest.mark.slow
def test_a_killed_rank_loses_only_its_chunk_and_the_same_command_completes_the_run(single_process, tmp_path, data_dir):
    """On PostgreSQL when a server can be started (the multi-node setting), else on SQLite."""
    url = new_database("postgresql" if server()[0] else "sqlite", tmp_path)
    args = [*TORCHRUN, "run", *CONFIG, "--data-dir", str(data_dir), "--db", url]
    agent = subprocess.Popen(
        args,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 600
    while count(url, "SELECT COUNT(*) FROM examples") < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    ranks = _rank_pids(agent.pid)
    assert set(ranks) == {0, 1}
    os.kill(ranks[1], signal.SIGKILL)  # rank 1 alone; torchrun then stops rank 0
    try:
        agent.wait(timeout=300)
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGKILL)
    assert agent.returncode != 0
    committed = count(url, "SELECT COUNT(*) FROM examples")
    assert 2 <= committed < 8 and committed % 2 == 0  # whole chunks only, and not the whole run
    assert " interrupted " in run_cli("runs", "--db", url).stdout

    resumed = _run(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed and stored run" in resumed.stdout
    assert rows(url) == single_process
    assert " complete " in run_cli("runs", "--db", url).stdout


def test_more_than_one_node_refuses_sqlite(tmp_path):
    """Node 0 of 2 (torchrun's environment, without torchrun): one clear line, before anything starts."""
    env = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1", "GROUP_WORLD_SIZE": "2"}
    done = run_cli("run", "--model", MODEL, "--db", f"sqlite:///{tmp_path / 'x.db'}", env=env)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "2 nodes" in done.stderr and "SQLite" in done.stderr and "postgresql" in done.stderr
    assert not (tmp_path / "x.db").exists()


def test_every_chunk_and_explain_unit_goes_to_exactly_one_rank():
    suite = resolve_suite(
        RunConfig(methods="saliency,integrated_gradients", metrics="sparseness,abpc", reliability=True)
    )
    chunks = attack_chunks(37, 4)
    plan = Todo("r", chunks, suite)
    for world in (1, 2, 3, 5, 16):
        parts = [share(plan, [100, 104], rank, world) for rank in range(world)]
        assert sorted(c for p in parts for c in p.chunks) == chunks
        assert sorted(s for p in parts for s in p.probes) == sorted({s for s, _ in chunks} | {100, 104})
        pairs = [pair for p in parts if p.suite is not None for pair in p.suite.pairs()]
        assert sorted(pairs) == sorted(suite.pairs())  # each scored pair exactly once
    assert split_suite(None, 0, 2) is None
