"""The messages a new user meets: each says what is wrong and what to do, on one line, at the right moment."""

from __future__ import annotations

import gzip
import pickle
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import harness.data.cifar as data_cifar
from harness import store
from harness.attack.autoattack import progress_label
from harness.cli import cli
from harness.core.config import RunConfig
from harness.core.errors import HarnessError
from harness.data import DEBIAN_FASHION_MNIST, load_examples
from harness.pipeline.evaluate import evaluate
from harness.pipeline.resolve import check_options, check_training_split
from metrics.composites import make_composites
from metrics.featurevis.pipeline import FeatureVisConfig, visualise
from tests.conftest import SUBMISSIONS, run_cli


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_device_cuda_without_a_gpu_is_refused_before_the_worker_starts(tmp_path):
    db = tmp_path / "never.db"
    config = RunConfig(model=SUBMISSIONS / "fmnist_standard.py", device="cuda", db=f"sqlite:///{db}")
    with pytest.raises(HarnessError) as err:
        evaluate(config)
    assert "--device cuda was asked for, but this machine has no usable CUDA GPU" in err.value.problem
    assert "the submission is not at fault" in err.value.problem and "use --device cpu" in err.value.fix
    assert not db.exists()  # refused before the database, the worker or the submission were touched
    with pytest.raises(HarnessError, match="is not a device"):
        check_options(RunConfig(model=SUBMISSIONS / "fmnist_standard.py", device="gpu0"))


def test_database_urls(tmp_path):
    import importlib.util

    if importlib.util.find_spec("psycopg") is None:  # SQLAlchemy's default PostgreSQL driver
        with pytest.raises(HarnessError) as err:
            store.open_database("postgresql://bench:secret@127.0.0.1:1/results")
        assert "needs the Python driver 'psycopg', which is not installed" in err.value.problem
        assert "secret" not in str(err.value) and err.value.fix == "pip install -e .[postgres]"
    with pytest.raises(HarnessError) as err:
        store.open_database(f"sqlite:///{tmp_path / 'typo' / 'x.db'}")
    assert f"the directory {tmp_path / 'typo'} of --db" in err.value.problem and "does not exist" in err.value.problem
    assert not (tmp_path / "typo").exists()
    with pytest.raises(HarnessError, match="is not a database URL"):
        store.open_database("results.db")


def test_empty_and_missing_databases(tmp_path):
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    store.open_database(db)
    runner = CliRunner()
    assert "no completed runs in" in runner.invoke(cli, ["results", "--db", db]).output
    assert "robint-bench import results/archive" in runner.invoke(cli, ["results", "--db", db]).output
    assert runner.invoke(cli, ["results", "--json", "--db", db]).output.strip() == "[]"
    assert runner.invoke(cli, ["runs", "--db", db]).output.startswith("no runs in")
    missing = tmp_path / "missing.db"
    proc = run_cli("results", "--db", f"sqlite:///{missing}")
    assert proc.returncode == 2 and f"error: there is no database at {missing}" in proc.stderr
    out = tmp_path / "lb.md"  # a mistyped --db never overwrites a leaderboard with an empty one
    result = runner.invoke(cli, ["leaderboard", "--db", f"sqlite:///{missing}", "--out", str(out)])
    assert isinstance(result.exception, HarnessError) and "there is no database at" in str(result.exception)
    assert not missing.exists() and not out.exists()


def test_counts_read_as_english():
    assert progress_label("apgd-ce", 1) == "AutoAttack apgd-ce on 1 point"
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([3, 3, 3, 3])
    with pytest.raises(ValueError, match="only 1 class has a correctly classified example; GridPG needs 4"):
        make_composites(x, y, torch.ones(4, dtype=torch.bool), n_composites=1, generator=torch.Generator())


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_fashion_mnist_that_is_not_the_official_file_warns_in_one_line(tmp_path, capfd):
    source = tmp_path / "fashion-mnist"
    source.mkdir()
    for path in DEBIAN_FASHION_MNIST.glob("t10k-*.gz"):
        shutil.copy(path, source / path.name)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):  # tiny stand-ins: never loaded here
        with gzip.open(source / f"{name}.gz", "wb") as fh:
            fh.write(b"")
    labels = gzip.decompress((source / "t10k-labels-idx1-ubyte.gz").read_bytes())
    changed = labels[:8] + bytes([(labels[8] + 1) % 10]) + labels[9:]
    (source / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(changed))
    capfd.readouterr()
    _, y = load_examples("fashion-mnist", n=3, data_dir=tmp_path)
    err = capfd.readouterr().err.splitlines()
    path = tmp_path / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    assert err == [
        f"warning: {path} differs from the official Fashion-MNIST file (sha256): results on it are not comparable "
        "with the leaderboard's"
    ]
    assert y[0] == (labels[8] + 1) % 10


def test_the_real_fashion_mnist_gives_no_warning(data_dir, capfd):
    capfd.readouterr()
    load_examples("fashion-mnist", n=2, data_dir=data_dir)
    assert "warning" not in capfd.readouterr().err


def _cifar_test_batch_only(root):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    data = np.random.default_rng(0).integers(0, 256, (4, 3072), dtype=np.uint8)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({b"data": data, b"labels": [0, 1, 2, 3]}, fh, protocol=2)


CIFAR_SUBMISSION = """
import torch
METADATA = {"name": "tiny", "dataset": "cifar10", "architecture": "linear"}
def load_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
"""


def test_cifar_without_its_training_split_fails_before_the_attack(tmp_path, monkeypatch):
    def offline(layout, data_dir):
        raise OSError("no network")

    monkeypatch.setattr(data_cifar, "_download", offline)
    _cifar_test_batch_only(tmp_path / "data")
    submission = tmp_path / "tiny.py"
    submission.write_text(CIFAR_SUBMISSION)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    config = RunConfig(model=submission, n_examples=2, data_dir=tmp_path / "data", db=db, trusted=True, progress=False)
    with pytest.raises(HarnessError) as err:
        evaluate(config)
    assert err.value.problem.startswith(
        "expected_gradients and feature visualisation need training images of cifar10, and its training split is "
        "not available: cifar10 train files missing in"
    )
    assert err.value.fix.endswith("or run without them: --methods integrated_gradients --no-featurevis")
    with store.transaction(store.open_database(db)) as s:
        assert store.all_runs(s) == []  # nothing was attacked or stored
    # what the fix says works: no training images needed
    request = check_options(
        RunConfig(model=submission, methods="integrated_gradients", featurevis=False, data_dir=tmp_path / "data")
    )
    check_training_split(request.suite, request.featurevis, "cifar10", tmp_path / "data")


def test_feature_visualisation_shows_progress(standard_model, fmnist_test, capfd):
    x, y = fmnist_test
    config = FeatureVisConfig(n_inversion=2, inversion_steps=3, per_class=1, generation_steps=2, batch_size=8)
    capfd.readouterr()
    out = visualise(
        standard_model, x[:8], y[:8], x, y, config=config, num_classes=10, device=torch.device("cpu"), progress=True
    )
    err = capfd.readouterr().err
    total = 2 * 1 * (3 + 2) + 2 * 2  # 2 seed kinds x 1 chunk x (target + seed + 3 steps) + 2 chunks of 8 x 2 steps
    assert "feature visualisation" in err and f"/{total} " in err
    assert out["generation"]["images"].shape == (10, 1, 28, 28)


def test_list_shows_attacks_and_zoo_ids():
    output = CliRunner().invoke(cli, ["list"], catch_exceptions=False).output
    assert "attacks (--attack): AutoAttack standard, plus, rand (default: standard), or a comma list of apgd-ce" in (
        output
    )
    assert "cifar10 Linf (" in output and "Wong2020Fast" in output and "imagenet Linf (" in output
