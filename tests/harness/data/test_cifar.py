"""CIFAR-10/100 read from small files in the official on-disk format (Python 2 pickles of batch dicts)."""

from __future__ import annotations

import pickle
import struct
import urllib.error

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar as tv_cifar

import harness.data.cifar as data_cifar
from harness.data import get_dataset, load_examples
from harness.data.cifar import CIFAR10, CIFAR10_CLASSES, CIFAR100, CIFAR100_CLASSES, read_class_names
from harness.core.errors import HarnessError


class _Py2Pickler(pickle._Pickler):
    """Writes ``bytes`` as a Python 2 ``str`` (BINSTRING), as in the official files, which Python 2 made.

    Such strings load as ``bytes`` under ``encoding="bytes"`` (our reader) and as ``str`` under
    ``encoding="latin1"`` (torchvision's), exactly like the real batch files.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str


def _dump(path, obj) -> None:
    with open(path, "wb") as fh:
        _Py2Pickler(fh, protocol=2).dump(obj)


def _write_cifar(root, layout, sizes: dict[str, int], seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Write every file of ``layout`` under ``root``; returns the (data, labels) written per file name."""
    rng = np.random.default_rng(seed)
    folder = root / layout.folder
    folder.mkdir(parents=True)
    k = len(layout.classes)
    written = {}
    for split, names in layout.splits.items():
        for i, name in enumerate(names):
            n = sizes[split]
            data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            labels = [int(v) for v in (np.arange(n) * 3 + i) % k]
            entry = {b"batch_label": f"{name} of 1".encode(), b"data": data, layout.label_key.encode(): labels,
                     b"filenames": [f"img_{j}.png".encode() for j in range(n)]}
            if layout is CIFAR100:
                entry[b"coarse_labels"] = [v // 5 for v in labels]
            _dump(folder / name, entry)
            written[name] = (data, labels)
    meta = {layout.names_key.encode(): [c.encode() for c in layout.classes]}
    if layout is CIFAR10:
        meta.update({b"num_cases_per_batch": 10000, b"num_vis": 3072})
    else:
        meta[b"coarse_label_names"] = [f"super_{i}".encode() for i in range(20)]
    _dump(folder / layout.meta, meta)
    return written


@pytest.fixture
def no_download(monkeypatch):
    """No network here: make torchvision's download fail at once, as it does offline."""

    def fail(layout, data_dir):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(data_cifar, "_download", fail)


def test_cifar10_test_split_equals_torchvision_reader(tmp_path, monkeypatch):
    written = _write_cifar(tmp_path, CIFAR10, {"train": 4, "test": 9})
    x, y = load_examples("cifar10", data_dir=tmp_path)
    assert x.shape == (9, 3, 32, 32) and x.dtype == torch.float32
    assert y.shape == (9,) and y.dtype == torch.int64
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    data, labels = written["test_batch"]
    assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(data.reshape(-1, 3, 32, 32)))
    assert y.tolist() == labels
    # Oracle: torchvision's own reader on the same files, with only its md5 check bypassed.
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    ref = tv_cifar.CIFAR10(str(tmp_path), train=False, download=False)
    assert torch.equal((x * 255).round().to(torch.uint8), torch.from_numpy(ref.data).permute(0, 3, 1, 2))
    assert y.tolist() == ref.targets
    assert read_class_names(CIFAR10, tmp_path) == tuple(ref.classes) == CIFAR10_CLASSES


def test_torchvision_md5_check_rejects_generated_files(tmp_path):
    """Why harness.data_cifar reads the pickles itself: download=False checks every file's md5."""
    _write_cifar(tmp_path, CIFAR10, {"train": 2, "test": 2})
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        tv_cifar.CIFAR10(str(tmp_path), train=False, download=False)


def test_non_official_files_are_read_with_a_one_line_warning(tmp_path, capfd):
    _write_cifar(tmp_path, CIFAR10, {"train": 2, "test": 2})
    data_cifar.load_cifar10("test", tmp_path)
    data_cifar.load_cifar10("test", tmp_path)  # once per file and process
    lines = capfd.readouterr().err.splitlines()
    path = tmp_path / CIFAR10.folder / "test_batch"
    assert lines == [
        f"warning: {path} differs from the official cifar10 file (md5 per torchvision): results on it are not "
        "comparable with RobustBench's"
    ]


def test_first_n_in_order_and_train_batches_concatenated(tmp_path):
    written = _write_cifar(tmp_path, CIFAR10, {"train": 5, "test": 8})
    x_all, y_all = load_examples("cifar10", data_dir=tmp_path)
    x3, y3 = load_examples("cifar10", n=3, data_dir=tmp_path)
    assert torch.equal(x3, x_all[:3]) and torch.equal(y3, y_all[:3])
    x_train, y_train = load_examples("cifar10", split="train", data_dir=tmp_path)
    assert x_train.shape == (25, 3, 32, 32)
    assert y_train.tolist() == [v for i in range(1, 6) for v in written[f"data_batch_{i}"][1]]
    with pytest.raises(HarnessError, match="outside the 8 test images of cifar10"):
        load_examples("cifar10", n=9, data_dir=tmp_path)


def test_cifar100_fine_labels_and_meta(tmp_path, monkeypatch):
    written = _write_cifar(tmp_path, CIFAR100, {"train": 6, "test": 7})
    x, y = load_examples("cifar100", n=5, data_dir=tmp_path)
    assert x.shape == (5, 3, 32, 32)
    assert y.tolist() == written["test"][1][:5]  # fine labels, not coarse ones
    assert read_class_names(CIFAR100, tmp_path) == CIFAR100_CLASSES
    x_train, _ = load_examples("cifar100", split="train", data_dir=tmp_path)
    assert len(x_train) == 6
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    ref = tv_cifar.CIFAR100(str(tmp_path), train=False, download=False)
    assert y.tolist() == ref.targets[:5] and tuple(ref.classes) == CIFAR100_CLASSES


def test_registry_entries_follow_robustbench():
    for name, k in (("cifar10", 10), ("cifar100", 100)):
        info = get_dataset(name)
        assert (info.num_classes, len(info.classes), info.input_shape) == (k, k, (3, 32, 32))
        assert info.default_threat_model == "Linf" and info.default_eps == {"Linf": "8/255", "L2": "0.5"}
        assert not info.has_object_masks and info.test_size == 10000  # the official test batch, which RobustBench uses


@pytest.mark.parametrize(("name", "folder", "file"), [("cifar10", "cifar-10-batches-py", "test_batch"),
                                                      ("cifar100", "cifar-100-python", "test")])
def test_missing_files_give_one_line_naming_the_directory(tmp_path, no_download, name, folder, file):
    with pytest.raises(HarnessError) as info:
        load_examples(name, n=1, data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / folder) in message and file in message
    assert "downloading failed (URLError)" in message and "https://www.cs.toronto.edu/~kriz/cifar.html" in message


def test_missing_train_batch_only(tmp_path, no_download):
    _write_cifar(tmp_path, CIFAR10, {"train": 2, "test": 2})
    (tmp_path / CIFAR10.folder / "data_batch_3").unlink()
    assert len(load_examples("cifar10", data_dir=tmp_path)[1]) == 2  # the test split needs only test_batch
    with pytest.raises(HarnessError, match=r"train files missing in .*cifar-10-batches-py \(data_batch_3\)"):
        load_examples("cifar10", split="train", data_dir=tmp_path)


def test_malformed_batch_and_meta_are_clear_errors(tmp_path):
    _write_cifar(tmp_path, CIFAR10, {"train": 2, "test": 2})
    folder = tmp_path / CIFAR10.folder
    _dump(folder / "test_batch", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(HarnessError, match="test_batch is not a cifar10 batch"):
        load_examples("cifar10", data_dir=tmp_path)
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(HarnessError, match="cannot read .*test_batch"):
        load_examples("cifar10", data_dir=tmp_path)
    _dump(folder / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    _dump(folder / "batches.meta", {b"label_names": [b"a", b"b"]})
    with pytest.raises(HarnessError, match="names 2 classes; cifar10 has 10"):
        load_examples("cifar10", data_dir=tmp_path)
