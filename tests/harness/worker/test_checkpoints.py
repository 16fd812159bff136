"""Zoo checkpoints as RobustBench really ships them: numpy scalars and an argparse.Namespace next to the weights (saved
by numpy 1.x), a Google Drive page saved as .pt, and a checkpoint holding an object that must not be unpickled."""

from __future__ import annotations

import argparse
import fractions
import io
import pickle

import numpy as np
import pytest
import torch

from harness.core.autoattack_shim import import_robustbench
from harness.core.errors import HarnessError
from harness.worker.checkpoints import is_web_page, load_checkpoint
from harness.worker.zoo import load_zoo_model
from tests.conftest import run_cli

ZOO_ID = "Wong2020Fast"  # PreActResNet-18, the smallest CIFAR-10 Linf zoo architecture
GDRIVE_PAGE = b"""<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>
<body><p>Too many users have viewed or downloaded this file recently.</p></body></html>"""


def _numpy1_checkpoint(obj) -> bytes:
    """``torch.save`` as RobustBench's checkpoints were written: numpy 1.x names for numpy scalars (legacy format,
    whose pickle names globals in plain text, so the numpy 2 module name can be rewritten to numpy 1's)."""
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=False)
    raw = buf.getvalue()
    assert raw.count(b"cnumpy._core.multiarray\nscalar\n") >= 1
    return raw.replace(b"cnumpy._core.multiarray\nscalar\n", b"cnumpy.core.multiarray\nscalar\n")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """The zoo architecture's random weights, saved the way RobustBench's training scripts saved them."""
    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    entry = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.Linf][ZOO_ID]
    state = entry["model"]().state_dict()
    root = tmp_path_factory.mktemp("models")
    path = root / "cifar10" / "Linf" / f"{ZOO_ID}.pt"
    path.parent.mkdir(parents=True)
    checkpoint = {
        "state_dict": {f"module.{k}": v for k, v in state.items()},
        "epoch": np.int64(15),
        "best_acc": np.float64(0.4602),
        "args": argparse.Namespace(lr=0.2, epochs=15, attack="fgsm"),
    }
    path.write_bytes(_numpy1_checkpoint(checkpoint))
    return root, path, state, entry["gdrive_id"]


def test_a_real_style_checkpoint_loads_weights_only(zoo):
    root, path, state, _ = zoo
    with pytest.raises(pickle.UnpicklingError, match="numpy.core.multiarray.scalar"):
        torch.load(path, map_location="cpu")  # what robustbench 1.1.1 does under torch's weights-only default
    model, info = load_zoo_model(ZOO_ID, "cifar10", "Linf", root)
    loaded = model.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    assert info["robustbench_id"] == ZOO_ID
    raw = load_checkpoint(path, "the zoo")
    assert raw["epoch"] == 15 and raw["args"].attack == "fgsm" and raw["best_acc"] == 0.4602


def test_other_objects_are_refused_with_the_whole_cause(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"w": torch.zeros(1), "ratio": fractions.Fraction(1, 3)}, path)
    with pytest.raises(HarnessError) as err:
        load_checkpoint(path, "https://example.org/x.pt")
    assert "Unsupported global: GLOBAL fractions.Fraction" in err.value.problem
    assert err.value.problem.endswith(
        "types accepted by default with weights_only https://pytorch.org/docs/stable/generated/torch.load.html."
    )  # not cut short
    assert "\n" not in err.value.problem and "\x1b" not in err.value.problem
    assert "does not unpickle (only tensors, numpy scalars and arrays, and argparse.Namespace)" in err.value.fix


@pytest.mark.slow
def test_a_saved_web_page_is_named_as_such(tmp_path, zoo):
    _, _, _, gdrive_id = zoo
    models = tmp_path / "models"
    page = models / "cifar10" / "Linf" / f"{ZOO_ID}.pt"
    page.parent.mkdir(parents=True)
    page.write_bytes(b"\n  " + GDRIVE_PAGE)
    assert is_web_page(page)
    with pytest.raises(
        HarnessError,
        match=f"is a web page, not a checkpoint: download it again from https://drive.google.com/uc\\?id={gdrive_id}",
    ):
        load_zoo_model(ZOO_ID, "cifar10", "Linf", models)
    # end to end: the sandboxed worker says the same, on one line, before any data is needed
    proc = run_cli(
        "run",
        "--robustbench",
        ZOO_ID,
        "--dataset",
        "cifar10",
        "--model-dir",
        str(models),
        "--data-dir",
        str(tmp_path / "data"),
        "--n-examples",
        "1",
        "--metrics",
        "none",
        "--quiet",
        "--db",
        f"sqlite:///{tmp_path / 'z.db'}",
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert f"error: {page} is a web page, not a checkpoint: download it again from https://drive.google.com" in lines[0]
