"""`train --method fgsm-rs`: a tiny run that trains, the overfitting check wired into the trainer (constructed
collapse), and per-epoch checkpoints that resume an interrupted training to the same weights."""

import json

import pytest
import torch

import harness.train.trainer as trainer
from harness.train.trainer import TrainConfig, check_accuracy, train
from harness.worker.submission import load_submission


def _config(tmp_path, data_dir, name: str, **kw) -> TrainConfig:
    options = {
        "method": "fgsm-rs",
        "out": tmp_path / f"{name}.py",
        "eps": "0.05",
        "n_train": 512,
        "check_n": 50,
        "batch_size": 64,
        "lr": 3e-3,
        "eval_n": 50,
        "data_dir": data_dir,
        "progress": False,
        "command": f"robint-bench train ... --out {name}.py",
    }
    return TrainConfig(**{**options, **kw})


def test_fgsm_rs_trains_and_records_its_check(tmp_path, data_dir):
    report = train(_config(tmp_path, data_dir, "fast", epochs=2, arch="resnet8-gap"))
    sub = load_submission(tmp_path / "fast.py")
    t = sub.metadata["training"]
    assert t["method"] == "fgsm-rs" and t["eps"] == "0.05" and t["fgsm_step_size"] == pytest.approx(1.25 * 0.05)
    assert t["pgd_steps"] is None and sub.metadata["architecture"] == "resnet8-gap"
    assert json.loads(t["check_pgd_acc"]) == report.check_acc and len(report.check_acc) == 2
    assert t["epochs_run"] == 2 and report.clean_acc > 0.3  # chance is 0.1
    assert t["best_epoch"] in (1, 2) and "last 50 training images" in t["overfit_check"]
    co = t["catastrophic_overfitting"]
    assert co is None or json.loads(co)["restored_epoch"] == 1


@pytest.mark.slow
def test_collapse_stops_training_and_keeps_the_best_epoch(tmp_path, data_dir):
    """A drop threshold so high that any epoch after the first counts as a collapse: training stops after epoch 2
    and the submission holds epoch 1's weights, whose check accuracy is the recorded best."""
    report = train(_config(tmp_path, data_dir, "collapse", eps="0.02", epochs=3, n_train=256, overfit_drop=1e9))
    co = report.catastrophic_overfitting
    assert report.epochs_run == 2 and co["epoch"] == 2 and co["best_epoch"] == co["restored_epoch"] == 1
    sub = load_submission(tmp_path / "collapse.py")
    assert json.loads(sub.metadata["training"]["catastrophic_overfitting"]) == co
    from harness.data import load_examples

    x, y = load_examples("fashion-mnist", split="train", data_dir=data_dir)
    acc = check_accuracy(sub.model, x[-50:], y[-50:], threat_model="Linf", eps=0.02)
    assert acc == co["best_pgd_acc"] == report.check_acc[0] > 0


@pytest.mark.slow
def test_an_interrupted_training_resumes_from_its_checkpoint_to_the_same_weights(tmp_path, data_dir, monkeypatch):
    """Standard training with the overfitting check on (the cheapest run whose checkpoint holds every kind of state:
    weights, optimiser, schedule, random stream, the check's history and best weights)."""
    options = {"method": "standard", "overfit_check": True, "epochs": 2, "n_train": 256, "eval_n": 20}
    whole = train(_config(tmp_path, data_dir, "whole", **options))
    config = _config(tmp_path, data_dir, "resumed", **options, checkpoint=tmp_path / "resumed.ckpt")
    real_loss, calls = trainer._loss, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) > 256 // 64:  # the first batch of epoch 2
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(trainer, "_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    assert config.checkpoint.is_file() and not config.out.exists()
    monkeypatch.setattr(trainer, "_loss", real_loss)
    resumed = train(config)
    assert resumed.resumed_from_epoch == 1 and not config.checkpoint.exists()
    assert resumed.check_acc == whole.check_acc
    a, b = torch.load(whole.weights), torch.load(resumed.weights)
    assert all(torch.equal(a[k], b[k]) for k in a)

    other = _config(tmp_path, data_dir, "resumed", **{**options, "epochs": 3}, checkpoint=tmp_path / "resumed.ckpt")
    torch.save({"key": "another configuration"}, other.checkpoint)
    with pytest.raises(Exception, match="another training configuration"):
        train(other)
