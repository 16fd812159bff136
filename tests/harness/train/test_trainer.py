"""The reference trainer writes a loadable submission whose model beats chance."""

import pytest
import torch

from harness.data import load_examples
from harness.train.trainer import TrainConfig, train
from harness.worker.submission import load_submission


@pytest.mark.slow
def test_trainer_produces_a_model_that_beats_chance(tmp_path, data_dir):
    out = tmp_path / "tiny_standard.py"
    report = train(
        TrainConfig(
            method="standard",
            out=out,
            epochs=1,
            n_train=3000,
            batch_size=64,
            lr=3e-3,
            eval_n=300,
            data_dir=data_dir,
            progress=False,
            command="test",
        )
    )
    sub = load_submission(out)
    assert sub.metadata["training"]["method"] == "standard"
    assert sub.metadata["weights"] == "tiny_standard.pt" and report.weights.is_file()
    x, y = load_examples("fashion-mnist", n=300, data_dir=data_dir)
    with torch.no_grad():
        acc = (sub.model(x).argmax(1) == y).float().mean().item()
    assert acc == pytest.approx(report.clean_acc, abs=1e-4)
    assert acc > 0.3  # chance is 0.1


def test_adversarial_training_methods_run(tmp_path, data_dir):
    for method, threat, eps in (("pgd-at", "L2", "1.5"), ("trades", "Linf", "0.1")):
        out = tmp_path / f"{method}.py"
        report = train(
            TrainConfig(
                method=method,
                out=out,
                threat_model=threat,
                eps=eps,
                epochs=1,
                n_train=256,
                steps=2,
                eval_n=50,
                data_dir=data_dir,
                progress=False,
            )
        )
        meta = load_submission(out).metadata
        assert meta["training"]["threat_model"] == threat and meta["training"]["eps"] == eps
        assert 0.0 <= report.pgd_acc <= 1.0
