"""Fashion-MNIST: the embedded default data set (Debian's ``dataset-fashion-mnist``, or torchvision's download)."""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import shutil
from pathlib import Path

import torch

from harness.data.notices import data_warning
from harness.core.errors import HarnessError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# sha256 of the unpacked idx files of Zalando's release (the .gz files whose md5s torchvision lists). Debian's
# dataset-fashion-mnist recompressed the .gz files, so their md5s differ from torchvision's list, but they unpack to
# exactly these files; a file that does not is read with a one-line warning.
OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_checked: dict[tuple[str, int, int], str] = {}
CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def prepare_fashion_mnist(data_dir: Path) -> Path:
    """Make ``data_dir/FashionMNIST/raw`` hold the four idx files; return the torchvision root.

    Sources, in order: files already there; ``.gz`` files in ``data_dir`` (or ``data_dir/fashion-mnist``)
    or in Debian's ``dataset-fashion-mnist`` package (unpacked once); torchvision's download.
    """
    raw = data_dir / "FashionMNIST" / "raw"
    names = [name for pair in _FMNIST_FILES.values() for name in pair]
    if all((raw / name).is_file() for name in names):
        return data_dir
    for source in (data_dir, data_dir / "fashion-mnist", DEBIAN_FASHION_MNIST):
        if all((source / f"{name}.gz").is_file() for name in names):
            raw.mkdir(parents=True, exist_ok=True)
            for name in names:
                _gunzip_atomic(source / f"{name}.gz", raw / name)
            return data_dir
    try:
        from torchvision.datasets import FashionMNIST

        for train in (True, False):
            FashionMNIST(str(data_dir), train=train, download=True)
        return data_dir
    except Exception as exc:  # no network: torchvision raises URLError/RuntimeError
        raise HarnessError(
            f"Fashion-MNIST not found under {raw} or {DEBIAN_FASHION_MNIST}, and downloading failed "
            f"({type(exc).__name__})",
            "install Debian's package (apt-get install dataset-fashion-mnist) or pass --data-dir DIR "
            "holding the four idx files (.gz or unpacked)",
        ) from None


def _gunzip_atomic(src: Path, dst: Path) -> None:
    if dst.is_file():
        return
    tmp = dst.with_suffix(f".tmp{os.getpid()}")
    try:
        with gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(tmp, dst)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise HarnessError(f"cannot unpack {src} into {dst.parent}: {exc.strerror}", "check the data dir") from None


def load_fashion_mnist(split: str, data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, 28, 28)`` in [0, 1] and labels ``(N,)`` of ``split``. The idx files are read directly
    (the values torchvision's ``FashionMNIST`` gives, tests/harness/data/test_fashion_mnist.py): importing
    torchvision costs ~2 s in every process that loads data, the parent's and the worker's."""
    if split not in _FMNIST_FILES:
        raise HarnessError(f"unknown split {split!r} of fashion-mnist", "use train or test")
    root = prepare_fashion_mnist(data_dir)
    raw = root / "FashionMNIST" / "raw"
    warn_if_not_official(raw, split)
    images, labels = (read_idx(raw / name) for name in _FMNIST_FILES[split])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise HarnessError(
            f"the Fashion-MNIST {split} files in {raw} do not match: images {tuple(images.shape)}, "
            f"labels {tuple(labels.shape)}",
            "delete them; they are unpacked again from the .gz files",
        )
    x = images.unsqueeze(1).to(torch.float32).div_(255.0)
    return x, labels.to(torch.int64)


def read_idx(path: Path) -> torch.Tensor:
    """An unsigned-byte idx file (LeCun's MNIST format: magic 0x0000 0x08 ndim, big-endian int32 sizes, data)."""
    data = path.read_bytes()
    if len(data) < 4 or data[:3] != b"\x00\x00\x08" or not 1 <= data[3] <= 4:
        raise HarnessError(f"{path} is not an unsigned-byte idx file", "delete it; it is unpacked again")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) != offset + math.prod(shape):
        raise HarnessError(f"{path} is truncated or too long for its shape {shape}", "delete it; it is unpacked again")
    return torch.frombuffer(bytearray(data[offset:]), dtype=torch.uint8).view(shape)


def warn_if_not_official(raw: Path, split: str) -> None:
    """One warning line per idx file of ``split`` whose sha256 is not the official file's (hashed once per
    process and file version)."""
    for name in _FMNIST_FILES[split]:
        path = raw / name
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _checked:
            with open(path, "rb") as fh:
                _checked[key] = hashlib.file_digest(fh, "sha256").hexdigest()
        if _checked[key] != OFFICIAL_SHA256[name]:
            data_warning(
                f"{path} differs from the official Fashion-MNIST file (sha256): results on it are not comparable "
                "with the leaderboard's"
            )
