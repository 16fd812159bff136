"""Evaluation data sets: a registry of loaders returning the first n examples, in order (RobustBench's convention).

Images come back as float tensors ``(N, C, H, W)`` in [0, 1] and labels as int64 ``(N,)``.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from harness.errors import HarnessError
from harness.registry import Registry

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_DATA_DIR = Path(os.environ.get("ROBINT_DATA_DIR", "data"))


@dataclass(frozen=True)
class DatasetInfo:
    """What the harness needs to know about a data set; ``load(split, data_dir)`` returns all of a split."""

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]
    default_threat_model: str
    default_eps: dict[str, str]
    load: Callable[[str, Path], tuple[torch.Tensor, torch.Tensor]] = field(repr=False)
    has_object_masks: bool = False  # dark, empty background: object = pixels above a threshold


    @property
    def input_numel(self) -> int:
        c, h, w = self.input_shape
        return c * h * w


DATASETS: Registry[DatasetInfo] = Registry("data set")


def get_dataset(name: str) -> DatasetInfo:
    """The registered data set called ``name`` (raises a HarnessError naming the choices otherwise)."""
    return DATASETS.get(name)


def load_examples(
    name: str, *, split: str = "test", n: int | None = None, data_dir: Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` examples of a split: x ``(n, C, H, W)`` float in [0,1], y ``(n,)`` int64."""
    info = get_dataset(name)
    x, y = info.load(split, Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR)
    if n is not None:
        if n < 1 or n > len(y):
            raise HarnessError(
                f"--n-examples {n} is outside the {len(y)} {split} images of {name}",
                f"use 1 <= n <= {len(y)}",
            )
        x, y = x[:n], y[:n]
    return x.contiguous(), y.contiguous()


# --- Fashion-MNIST -----------------------------------------------------------------------------------

_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FMNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


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


def _load_fashion_mnist(split: str, data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    if split not in _FMNIST_FILES:
        raise HarnessError(f"unknown split {split!r} of fashion-mnist", "use train or test")
    from torchvision.datasets import FashionMNIST

    root = prepare_fashion_mnist(data_dir)
    ds = FashionMNIST(str(root), train=split == "train", download=False)
    x = ds.data.unsqueeze(1).to(torch.float32).div_(255.0)
    return x, ds.targets.to(torch.int64)


DATASETS.add(
    "fashion-mnist",
    DatasetInfo(
        name="fashion-mnist",
        num_classes=10,
        input_shape=(1, 28, 28),
        classes=_FMNIST_CLASSES,
        default_threat_model="Linf",
        default_eps={"Linf": "0.1", "L2": "1.5"},
        load=_load_fashion_mnist,
        has_object_masks=True,
    ),
)
