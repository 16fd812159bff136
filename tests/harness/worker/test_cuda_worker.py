"""A sandboxed run on CUDA (skipped without a GPU; CI has none, a lent GPU runs it): the worker initialises CUDA
inside the sandbox (without a PID namespace, which broke CUDA on an H200: harness.worker.containment.supervise)
and classifies the same images as the CPU does."""

import json

import pytest
import torch

from harness import store
from tests.conftest import SUBMISSIONS, run_cli

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _run(tmp_path, device):
    db = f"sqlite:///{tmp_path / device / 'runs.db'}"
    (tmp_path / device).mkdir()
    model = str(SUBMISSIONS / "fmnist_standard.py")
    args = ["--n-examples", "32", "--attack", "apgd-ce", "--metrics", "none", "--no-featurevis", "--quiet"]
    done = run_cli("run", "--model", model, *args, "--device", device, "--db", db)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(run_cli("results", "--db", db, "--json").stdout)
    sessions = store.open_database(db)
    with sessions.begin() as s:
        provenance = s.get(store.RunRecord, row["run_id"]).provenance
    return row, provenance


def test_a_sandboxed_cuda_run_matches_the_cpu(tmp_path):
    gpu, provenance = _run(tmp_path, "cuda")
    cpu, _ = _run(tmp_path, "cpu")
    assert gpu["hardware"]["device"] == "cuda"
    assert provenance["sandbox"]["containment"] == "subreaper" and provenance["sandbox"]["filesystem_isolated"]
    assert gpu["clean_acc"] == cpu["clean_acc"]  # the same 32 images, the same predictions
    assert abs(gpu["robust_acc"] - cpu["robust_acc"]) <= 2 / 32  # APGD's float32 path may differ on a point or two
