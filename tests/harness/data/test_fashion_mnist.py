import gzip
import struct

import numpy as np
import pytest
import torch

from harness.data import get_dataset, load_examples
from harness.core.errors import HarnessError


def _write_idx_gz(path, array: np.ndarray) -> None:
    """Write an array in the IDX format (the one Fashion-MNIST ships in), gzipped."""
    magic = {1: 0x00000801, 3: 0x00000803}[array.ndim]
    with gzip.open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic))
        fh.write(struct.pack(f">{array.ndim}I", *array.shape))
        fh.write(array.astype(np.uint8).tobytes())


def test_first_n_test_images_in_order(fmnist_test, data_dir):
    x, y = fmnist_test
    assert x.shape == (200, 1, 28, 28) and x.dtype == torch.float32
    assert y.shape == (200,) and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    # Fashion-MNIST's first test labels are well known: ankle boot, pullover, trouser, trouser, shirt.
    assert y[:5].tolist() == [9, 2, 1, 1, 6]
    x10, y10 = load_examples("fashion-mnist", n=10, data_dir=data_dir)
    assert torch.equal(x10, x[:10]) and torch.equal(y10, y[:10])


def test_debian_layout_gz_files_are_unpacked_and_read(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 7), ("t10k", 5)):
        _write_idx_gz(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _write_idx_gz(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    x, y = load_examples("fashion-mnist", split="test", data_dir=tmp_path)
    assert x.shape == (5, 1, 28, 28)
    assert y.tolist() == [0, 1, 2, 3, 4]
    assert (tmp_path / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()
    x_train, _ = load_examples("fashion-mnist", split="train", data_dir=tmp_path)
    assert len(x_train) == 7


def test_n_beyond_the_test_set_is_an_error(data_dir):
    with pytest.raises(HarnessError, match="outside the 10000 test images"):
        load_examples("fashion-mnist", n=10001, data_dir=data_dir)
    assert get_dataset("fashion-mnist").test_size == 10000  # the registry's fact is the split's size


def test_unknown_dataset_suggests_names():
    with pytest.raises(HarnessError, match="did you mean fashion-mnist"):
        get_dataset("fashion-mnst")


@pytest.mark.parametrize("split", ["test", "train"])
def test_the_idx_reader_gives_torchvisions_values(data_dir, split):
    """``load_fashion_mnist`` reads the idx files itself (no torchvision import per process): the same tensors as
    torchvision's ``FashionMNIST`` on the real files."""
    from torchvision.datasets import FashionMNIST

    from harness.data.fashion_mnist import load_fashion_mnist

    x, y = load_fashion_mnist(split, data_dir)
    reference = FashionMNIST(str(data_dir), train=split == "train", download=False)
    assert torch.equal(x, reference.data.unsqueeze(1).to(torch.float32) / 255)
    assert torch.equal(y, reference.targets.to(torch.int64)) and y.dtype == torch.int64


def test_damaged_idx_files_are_one_clear_error(tmp_path):
    from harness.data.fashion_mnist import read_idx

    good = tmp_path / "good"
    good.write_bytes(struct.pack(">I", 0x00000803) + struct.pack(">3I", 2, 2, 3) + bytes(range(12)))
    assert read_idx(good).tolist() == [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [9, 10, 11]]]
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(HarnessError, match="truncated or too long for its shape \\(2, 2, 3\\)"):
        read_idx(truncated)
    html = tmp_path / "page"
    html.write_bytes(b"<html>quota exceeded</html>")
    with pytest.raises(HarnessError, match="is not an unsigned-byte idx file"):
        read_idx(html)
    rng = np.random.default_rng(0)
    _write_idx_gz(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (5, 28, 28)))
    _write_idx_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", np.arange(4) % 10)
    for prefix in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (tmp_path / f"{prefix}.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(HarnessError, match=r"do not match: images \(5, 28, 28\), labels \(4,\)"):
        load_examples("fashion-mnist", split="test", data_dir=tmp_path)
