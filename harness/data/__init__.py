"""Evaluation data sets: a registry of loaders returning the first n examples, in order (RobustBench's convention).

Images come back as float tensors ``(N, C, H, W)`` in [0, 1] and labels as int64 ``(N,)``. Data sets:
``fashion-mnist`` (below), ``cifar10`` and ``cifar100`` (harness.data.cifar), ``imagenet`` (RobustBench's 5000
validation images, harness.data.imagenet) and ``folder:PATH[@S|@HxW]``, any ImageFolder test set
(harness.data.folder), built on the fly by :func:`get_dataset`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch

from harness.data.cifar import (
    CIFAR10,
    CIFAR10_CLASSES,
    CIFAR100,
    CIFAR100_CLASSES,
    ensure_cifar_split,
    load_cifar10,
    load_cifar100,
)
from harness.data.fashion_mnist import CLASSES as FASHION_MNIST_CLASSES
from harness.data.fashion_mnist import (
    DEBIAN_FASHION_MNIST,
    load_fashion_mnist,
    prepare_fashion_mnist,
    warn_if_not_official,
)
from harness.data.folder import (
    FOLDER_PREFIX,
    FolderSpec,
    folder_classes,
    folder_paths,
    load_folder_first,
    parse_folder_name,
)
from harness.data.imagenet import imagenet_classes, load_imagenet, load_imagenet_first
from harness.core.errors import HarnessError
from metrics.registry_base import Registry

DEFAULT_DATA_DIR = Path(os.environ.get("ROBINT_DATA_DIR", "data"))

__all__ = [
    "DATASETS",
    "DEBIAN_FASHION_MNIST",
    "DEFAULT_DATA_DIR",
    "DatasetInfo",
    "dataset_paths",
    "ensure_split",
    "get_dataset",
    "load_examples",
    "prepare_fashion_mnist",
]


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
    # The official test split RobustBench evaluates whole (ImageNet: its fixed list of 5000 validation images);
    # None for a data set without one (a folder of images). RobustBench exports say when a run used fewer.
    test_size: int | None = None
    # Optional, for data sets too large to decode whole: ``load_first(split, data_dir, n)`` returns the first
    # ``min(n, total)`` examples and ``total``, the size of the split (``load_examples`` uses it when n is given).
    load_first: Callable[[str, Path, int], tuple[torch.Tensor, torch.Tensor, int]] | None = field(
        default=None, repr=False
    )
    # Optional: ``ensure(split, data_dir)`` makes a split available (fetching it where the data set can) without
    # decoding it, or raises a HarnessError; without it, :func:`ensure_split` loads the split's first example.
    ensure: Callable[[str, Path], None] | None = field(default=None, repr=False)

    @property
    def input_numel(self) -> int:
        c, h, w = self.input_shape
        return c * h * w


DATASETS: Registry[DatasetInfo] = Registry("data set", error=HarnessError)


def get_dataset(name: str) -> DatasetInfo:
    """The data set called ``name``: a registered one, or ``folder:PATH[@S|@HxW]`` (see harness.data.folder).

    A ``folder:`` name is built on the fly (its classes are read from PATH); its ``info.name`` is the canonical
    form with an absolute path, which a caller should store so that another process finds the same folder.
    Unknown names raise a HarnessError with "did you mean" suggestions.
    """
    if name.startswith(FOLDER_PREFIX):
        return _folder_dataset(name)
    return DATASETS.get(name)


def dataset_paths(name: str, data_dir: Path | None = None) -> tuple[Path, ...]:
    """The directories a data set reads (e.g. for a sandbox's read paths): the data dir, or a folder's own."""
    if name.startswith(FOLDER_PREFIX):
        return folder_paths(parse_folder_name(name))
    get_dataset(name)
    return (Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR,)


def load_examples(
    name: str, *, split: str = "test", n: int | None = None, data_dir: Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` examples of a split: x ``(n, C, H, W)`` float in [0,1], y ``(n,)`` int64."""
    info = get_dataset(name)
    root = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    if n is not None and info.load_first is not None:
        x, y, total = info.load_first(split, root, n)
    else:
        x, y = info.load(split, root)
        total = len(y)
    if n is not None:
        if n < 1 or n > total:
            raise HarnessError(
                f"--n-examples {n} is outside the {total} {split} images of {name}",
                f"use 1 <= n <= {total}",
            )
        x, y = x[:n], y[:n]
    return x.contiguous(), y.contiguous()


def ensure_split(name: str, split: str, *, data_dir: Path | None = None) -> None:
    """Check that ``split`` of a data set can be loaded (fetching missing files where the data set can), without
    decoding it all; raises the data set's own HarnessError (naming the missing files and the fix) otherwise."""
    info = get_dataset(name)
    root = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    if info.ensure is not None:
        info.ensure(split, root)
    elif info.load_first is not None:
        info.load_first(split, root, 1)
    else:
        info.load(split, root)


# --- Fashion-MNIST (harness.data.fashion_mnist) ----------------------------------------------------

DATASETS.add(
    "fashion-mnist",
    DatasetInfo(
        name="fashion-mnist",
        num_classes=10,
        input_shape=(1, 28, 28),
        classes=FASHION_MNIST_CLASSES,
        default_threat_model="Linf",
        default_eps={"Linf": "0.1", "L2": "1.5"},
        load=load_fashion_mnist,
        has_object_masks=True,
        test_size=10000,
        ensure=lambda split, data_dir: warn_if_not_official(
            prepare_fashion_mnist(data_dir) / "FashionMNIST" / "raw", split
        ),
    ),
)


# --- CIFAR-10, CIFAR-100 (harness.data.cifar), ImageNet (harness.data.imagenet): RobustBench's defaults --------

_CIFAR_EPS = {"Linf": "8/255", "L2": "0.5"}

DATASETS.add(
    "cifar10",
    DatasetInfo(
        name="cifar10",
        num_classes=10,
        input_shape=(3, 32, 32),
        classes=CIFAR10_CLASSES,  # = label_names of the official batches.meta (harness.data.cifar checks the count)
        default_threat_model="Linf",
        default_eps=dict(_CIFAR_EPS),
        load=load_cifar10,
        ensure=partial(ensure_cifar_split, CIFAR10),
        test_size=10000,
    ),
)
DATASETS.add(
    "cifar100",
    DatasetInfo(
        name="cifar100",
        num_classes=100,
        input_shape=(3, 32, 32),
        classes=CIFAR100_CLASSES,  # = fine_label_names of the official meta file
        default_threat_model="Linf",
        default_eps=dict(_CIFAR_EPS),
        load=load_cifar100,
        ensure=partial(ensure_cifar_split, CIFAR100),
        test_size=10000,
    ),
)
DATASETS.add(
    "imagenet",
    DatasetInfo(
        name="imagenet",
        num_classes=1000,
        input_shape=(3, 224, 224),
        classes=imagenet_classes(),  # wnids, in RobustBench's class-index order
        default_threat_model="Linf",
        # Linf 4/255 is RobustBench's ImageNet leaderboard; it has no ImageNet L2 leaderboard, so L2 3.0 is the
        # radius most ImageNet L2 robust-training work reports (e.g. Salman et al. 2020), not a RobustBench one.
        default_eps={"Linf": "4/255", "L2": "3.0"},
        load=load_imagenet,
        load_first=load_imagenet_first,
        test_size=5000,
    ),
)


# --- folder:PATH (harness.data.folder): built on the fly by get_dataset -------------------------------------


def _folder_dataset(name: str) -> DatasetInfo:
    spec = parse_folder_name(name)
    classes = folder_classes(spec.root)
    return DatasetInfo(
        name=spec.name,
        num_classes=len(classes),
        input_shape=spec.input_shape,
        classes=classes,
        default_threat_model="Linf",
        default_eps={"Linf": "8/255", "L2": "0.5"},
        load=partial(_load_folder, spec),
        load_first=partial(_load_folder_first, spec),
    )


def _load_folder(spec: FolderSpec, split: str, data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    x, y, _ = load_folder_first(spec, split, None)
    return x, y


def _load_folder_first(spec: FolderSpec, split: str, data_dir: Path, n: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    return load_folder_first(spec, split, n)
