"""``--batch-size auto`` on a device whose memory holds 16 images (a model that raises torch.OutOfMemoryError above
that): the probe finds 16 for the attack and the explain stage, records it, and the stored numbers equal those of
the same model without the limit; a chunk that does not fit is refused with one line."""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import torch

from harness.core.memory import fit_attack, is_out_of_memory, largest_batch
from tests.conftest import run_cli
from tests.harness.store.postgres import rows

LIMIT = 16
SUBMISSION = '''
import torch
from torch import nn

METADATA = {{"name": "{name}", "dataset": "fashion-mnist", "architecture": "linear"}}


class Limited(nn.Module):
    """A linear model on a device that holds {limit} images."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))

    def forward(self, x):
        if x.shape[0] > {limit}:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return self.net(x)


def load_model():
    return Limited()
'''
COMMON = [
    "--n-examples",
    "32",
    "--attack",
    "apgd-ce",
    "--methods",
    "saliency",
    "--metrics",
    "sparseness,abpc",
    "--n-explain",
    "32",
    "--quiet",
]


@pytest.fixture
def readable():
    """A directory the sandboxed worker can read (as root it runs as nobody; pytest's tmp_path is private)."""
    path = tempfile.mkdtemp(prefix="robint-batching-")
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


def _submission(directory, name: str, limit: float) -> str:
    path = directory / f"{name}.py"
    path.write_text(SUBMISSION.format(name=name, limit=limit))
    return str(path)


def _run(*args: str) -> subprocess.CompletedProcess:
    """``robint-bench run ARGS``, the parent in this process (its workers sandboxed as always)."""
    return run_cli("run", *args)


@pytest.mark.slow
def test_auto_fits_the_device_and_changes_no_number(tmp_path, readable, data_dir):
    limited, unlimited = _submission(readable, "limited", LIMIT), _submission(readable, "unlimited", "float('inf')")
    auto_db, ref_db = f"sqlite:///{tmp_path / 'auto.db'}", f"sqlite:///{tmp_path / 'ref.db'}"
    common = [*COMMON, "--data-dir", str(data_dir)]
    auto = _run("--model", limited, "--batch-size", "auto", "--chunk-size", "16", "--db", auto_db, *common)
    assert auto.returncode == 0, auto.stderr
    # the same chunks on a device without the limit, explain stage in its default batch (all 32 images at once)
    ref = _run("--model", unlimited, "--batch-size", "16", "--db", ref_db, *common)
    assert ref.returncode == 0, ref.stderr
    assert rows(auto_db) == rows(ref_db)
    assert len(rows(auto_db)[0]) == 32

    from sqlalchemy import create_engine, text

    engine = create_engine(auto_db)
    with engine.connect() as con:
        details, config = con.execute(text("SELECT details, config FROM runs")).one()
    engine.dispose()
    details, config = json.loads(details), json.loads(config)
    assert config["batch_size"] == 16  # the chunk: part of the configuration key
    probed = details["batch_size"]
    assert probed["requested"] == "auto" and probed["chunk"] == 16
    (device,) = probed["devices"].values()
    assert device["attack"] == {"batch": 16, "failed": []}
    assert device["explain"] == {"batch": 16, "failed": [64, 32]}  # from the 4 x 16 GridPG rows down
    assert device["explain_batch"] == 16


@pytest.mark.slow
def test_auto_refuses_a_chunk_that_does_not_fit(tmp_path, readable, data_dir):
    limited = _submission(readable, "limited", LIMIT)
    db = f"sqlite:///{tmp_path / 'r.db'}"
    done = _run("--model", limited, "--batch-size", "auto", "--db", db, "--data-dir", str(data_dir), *COMMON)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "chunk of 32 images does not fit" in done.stderr  # the default chunk, 250, is all 32 images here
    assert "largest batch that fits: 16" in done.stderr and "--chunk-size 16" in done.stderr


def test_largest_batch_halves_until_it_fits_and_raises_other_errors():
    calls = []

    def step(batch):
        calls.append(batch)
        if batch > 5:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")

    assert largest_batch(step, 100, torch.device("cpu")) == (3, [100, 50, 25, 12, 6])
    assert calls == [100, 50, 25, 12, 6, 3]

    def broken(batch):
        raise ValueError("a bug, not memory")

    with pytest.raises(ValueError):
        largest_batch(broken, 8, torch.device("cpu"))
    with pytest.raises(torch.OutOfMemoryError):  # not even one image fits
        largest_batch(lambda b: (_ for _ in ()).throw(torch.OutOfMemoryError("out of memory")), 4, torch.device("cpu"))
    assert is_out_of_memory(MemoryError()) and not is_out_of_memory(RuntimeError("shape mismatch"))


def test_fit_attack_measures_a_real_backward_pass():
    """The attack probe runs forward and backward: a model whose backward pass alone fails above 8 images."""

    class BackwardLimited(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x):
            out = self.linear(x.flatten(1))
            if x.shape[0] > 8 and torch.is_grad_enabled():
                out.register_hook(lambda g: (_ for _ in ()).throw(torch.OutOfMemoryError("out of memory")))
            return out

    x = torch.rand(5, 1, 2, 2)
    assert fit_attack(BackwardLimited(), x, 20, torch.device("cpu")) == {"batch": 5, "failed": [20, 10]}
