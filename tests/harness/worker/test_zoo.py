"""A RobustBench zoo architecture and a CIFAR-10 test set in their real on-disk formats, offline:
load, contract, clean accuracy, one attacked batch, storage, leaderboard, RobustBench export, checkpoint flag."""

import json
import pickle

import numpy as np
import pytest
import torch

from harness.core.autoattack_shim import import_robustbench
from harness.core.weights import sha256_file
from tests.conftest import run_cli

ZOO_ID = "Wong2020Fast"  # PreActResNet-18, the smallest CIFAR-10 Linf zoo architecture


@pytest.fixture(scope="module")
def zoo_files(tmp_path_factory):
    """``models/cifar10/Linf/Wong2020Fast.pt`` (random weights of the real architecture) and a CIFAR-10 test batch."""
    root = tmp_path_factory.mktemp("zoo")
    import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(0)
    model = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.Linf][ZOO_ID]["model"]()
    checkpoint = root / "models" / "cifar10" / "Linf" / f"{ZOO_ID}.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save(model.state_dict(), checkpoint)
    batches = root / "data" / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    with torch.no_grad():  # labels = the random model's own predictions, so the attack has points to attack
        labels = model.eval()(torch.tensor(data).view(-1, 3, 32, 32).float() / 255).argmax(1).tolist()
    with open(batches / "test_batch", "wb") as fh:
        pickle.dump({b"data": data, b"labels": labels}, fh, protocol=2)
    names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    with open(batches / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [c.encode() for c in names]}, fh, protocol=2)
    return root, checkpoint


@pytest.mark.slow
def test_zoo_model_runs_offline_end_to_end(tmp_path, zoo_files):
    root, checkpoint = zoo_files
    db = f"sqlite:///{tmp_path / 'zoo.db'}"
    common = [
        "--robustbench",
        ZOO_ID,
        "--dataset",
        "cifar10",
        "--threat-model",
        "Linf",
        "--model-dir",
        str(root / "models"),
        "--data-dir",
        str(root / "data"),
        "--n-examples",
        "2",
        "--batch-size",
        "2",
        "--attack",
        "apgd-ce",
        "--quiet",
        "--db",
        db,
    ]
    proc = run_cli("run", *common, "--methods", "saliency", "--metrics", "sparseness", "--n-explain", "2")
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(run_cli("results", "--json", "--db", db).stdout)
    assert record["model"] == ZOO_ID and record["dataset"] == "cifar10" and record["eps_text"] == "8/255"
    assert record["model_sha256"]["weights"] == sha256_file(checkpoint)
    assert record["clean_acc"] == 1.0 and 0.0 <= record["robust_acc"] <= 1.0
    assert set(record["autoattack"]["accuracy_after"]) >= {"clean", "apgd-ce"}  # the attack ran on both points
    assert record["metrics"]["saliency"]["sparseness"]["n"] == 2

    out = tmp_path / "lb.md"
    assert run_cli("leaderboard", "--db", db, "--out", str(out)).returncode == 0
    assert f"| {ZOO_ID} |" in out.read_text() and "cifar10 — Linf, eps = 8/255" in out.read_text()
    exported = run_cli(
        "export",
        "--run",
        record["run_id"],
        "--format",
        "robustbench",
        "--db",
        db,
        "--out",
        str(tmp_path / "model_info"),
        *("--field", "link=https://arxiv.org/abs/2001.03994", "--field", "paper=Fast is better than free"),
        *("--field", "authors=Eric Wong, Leslie Rice, J. Zico Kolter", "--field", "venue=ICLR 2020"),
        *("--field", "additional_data=false", "--field", "architecture=PreAct ResNet-18"),
        *("--field", "reported_acc=0.4602", "--field", "number_forward_passes=1"),
    )
    info = json.loads((tmp_path / "model_info" / "cifar10" / "Linf" / f"{ZOO_ID}.json").read_text())
    assert (
        exported.returncode == 0
        and info["eps"] == "8/255"
        and info["autoattack_acc"] == (f"{100 * record['robust_acc']:.2f}")
    )
    scores = json.loads((tmp_path / "model_info" / "cifar10" / "Linf" / "robint-bench" / f"{ZOO_ID}.json").read_text())
    assert info["architecture"] == "PreAct ResNet-18" and "sparseness" in scores["metrics"]["saliency"]
    assert info["unreliable"] is True and info["reported"] == "46.02"  # apgd-ce on 2 images; the paper's claim

    # the same id with a different checkpoint is flagged
    state = torch.load(checkpoint, weights_only=True)
    state["linear.bias"] = state["linear.bias"] + 1.0
    torch.save(state, checkpoint)
    again = run_cli("run", *common, "--metrics", "none", "--n-examples", "1")  # the flag needs no second image
    assert again.returncode == 0, again.stderr
    newest = json.loads(run_cli("results", "--json", "--db", db).stdout)[-1]
    assert [f["code"] for f in newest["flags"]] == ["weights-changed"]


@pytest.mark.slow
def test_missing_checkpoint_offline_names_the_file(tmp_path, zoo_files):
    root, _ = zoo_files
    proc = run_cli(
        "run",
        "--robustbench",
        "Standard",
        "--dataset",
        "cifar10",
        "--model-dir",
        str(tmp_path / "none"),
        "--data-dir",
        str(root / "data"),
        "--n-examples",
        "2",
        "--db",
        f"sqlite:///{tmp_path / 'z.db'}",
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    expected = tmp_path / "none" / "cifar10" / "Linf" / "Standard.pt"
    assert f"{expected} of RobustBench model Standard is missing" in lines[0]
    assert "Google Drive id" in lines[0]
