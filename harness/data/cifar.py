"""CIFAR-10 and CIFAR-100 in torchvision's on-disk format (the python version from the dataset's site).

Layout, under the data dir::

    cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}
    cifar-100-python/{train, test, meta}

Each file is a python pickle of a dict: ``data`` uint8 ``(N, 3072)`` (the 1024 red, then green, then blue
pixels of each 32x32 image, row-major) and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100). Missing files
are fetched with ``torchvision.datasets.CIFAR10/CIFAR100(download=True)``: that needs network access, or the
archive (``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``) already placed in the data dir, which
torchvision then verifies and unpacks.

Why the batch files are read here and not through ``torchvision.datasets.CIFAR10(download=False)``: in
torchvision 0.29.1 that constructor first checks the md5 of EVERY batch file of both splits (and of the meta
file) against the official archive's, whichever split is asked for, and raises "Dataset not found or
corrupted" otherwise. Only the official release passes, so the reader could never be tested on small
generated files, and a user with just the test batch could not run. So the pickles are unpickled here, with
``encoding="bytes"`` as the dataset's own page shows, opened only by these known names inside the data dir (a
pickle the user placed in the data dir is trusted input; files from a submission are never unpickled). The
decoding is exactly torchvision's (``reshape(-1, 3, 32, 32)``, labels in file order); the tests check that our
tensors equal what torchvision's class returns on the same files when its md5 check is bypassed. A file
whose md5 differs from torchvision's record of the official one is still read, with a warning: results on it
are not comparable with RobustBench's.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from harness.data.notices import data_warning
from harness.core.errors import HarnessError

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# The fine label names, in label order (the order of ``fine_label_names`` in the official meta file).
CIFAR100_CLASSES = (
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
)


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR variant lives and what its files are called (torchvision's names)."""

    name: str
    folder: str
    archive: str
    splits: dict[str, tuple[str, ...]]
    meta: str
    label_key: str
    names_key: str
    classes: tuple[str, ...]


CIFAR10 = CifarLayout(
    name="cifar10",
    folder="cifar-10-batches-py",
    archive="cifar-10-python.tar.gz",
    splits={"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
    meta="batches.meta",
    label_key="labels",
    names_key="label_names",
    classes=CIFAR10_CLASSES,
)
CIFAR100 = CifarLayout(
    name="cifar100",
    folder="cifar-100-python",
    archive="cifar-100-python.tar.gz",
    splits={"train": ("train",), "test": ("test",)},
    meta="meta",
    label_key="fine_labels",
    names_key="fine_label_names",
    classes=CIFAR100_CLASSES,
)


def load_cifar10(split: str, data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """All of a CIFAR-10 split: x ``(N, 3, 32, 32)`` float in [0, 1], y ``(N,)`` int64 (N = 50000 or 10000)."""
    return load_cifar(CIFAR10, split, data_dir)


def load_cifar100(split: str, data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """All of a CIFAR-100 split (fine labels): x ``(N, 3, 32, 32)`` float in [0, 1], y ``(N,)`` int64."""
    return load_cifar(CIFAR100, split, data_dir)


def load_cifar(layout: CifarLayout, split: str, data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the batch files of ``split`` in order; fetch them first (torchvision's download) if missing."""
    if split not in layout.splits:
        raise HarnessError(f"unknown split {split!r} of {layout.name}", "use train or test")
    folder = Path(data_dir) / layout.folder
    files = [folder / name for name in layout.splits[split]]
    if not all(path.is_file() for path in files):
        _fetch(layout, split, Path(data_dir))
    xs, ys = [], []
    for path in files:
        entry = _unpickle(path)
        data, labels = entry.get("data"), entry.get(layout.label_key)
        if (
            not isinstance(data, np.ndarray)
            or data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != 3072
            or labels is None
            or len(labels) != len(data)
        ):
            raise HarnessError(
                f"{path} is not a {layout.name} batch: expected a dict with 'data' uint8 (N, 3072) and "
                f"'{layout.label_key}' (N labels)",
                f"replace it with the file from the python version at {CIFAR_URL}",
            )
        _warn_if_not_official(layout, path)
        xs.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
        ys.append(torch.as_tensor(np.asarray(labels, dtype=np.int64)))
    y = torch.cat(ys)
    k = len(layout.classes)
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= k):
        raise HarnessError(
            f"labels of {layout.name} under {folder} fall outside 0..{k - 1}",
            f"replace the files with the python version from {CIFAR_URL}",
        )
    _check_meta(layout, folder)
    return torch.cat(xs).to(torch.float32).div_(255.0), y


def read_class_names(layout: CifarLayout, data_dir: Path) -> tuple[str, ...]:
    """Class names from the meta file (``batches.meta`` / ``meta``); the standard names if it is missing."""
    path = Path(data_dir) / layout.folder / layout.meta
    if not path.is_file():
        return layout.classes
    names = _unpickle(path).get(layout.names_key)
    if not isinstance(names, list | tuple):
        raise HarnessError(f"{path} has no {layout.names_key!r} list", f"replace it with the file from {CIFAR_URL}")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names)


def _check_meta(layout: CifarLayout, folder: Path) -> None:
    names = read_class_names(layout, folder.parent)
    if len(names) != len(layout.classes):
        raise HarnessError(
            f"{folder / layout.meta} names {len(names)} class{'es' if len(names) != 1 else ''}; {layout.name} has "
            f"{len(layout.classes)}",
            f"replace it with the file from {CIFAR_URL}",
        )


def _unpickle(path: Path) -> dict:
    """A batch or meta dict with str keys (Python 2 pickles come back with bytes keys)."""
    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh, encoding="bytes")
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise HarnessError(f"cannot read {path}: {exc}", f"replace it with the file from {CIFAR_URL}") from None
    if not isinstance(entry, dict):
        raise HarnessError(f"{path} does not hold a dict", f"replace it with the file from {CIFAR_URL}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _warn_if_not_official(layout: CifarLayout, path: Path) -> None:
    from torchvision.datasets import CIFAR10 as TvCIFAR10
    from torchvision.datasets import CIFAR100 as TvCIFAR100
    from torchvision.datasets.utils import check_integrity

    tv = TvCIFAR10 if layout is CIFAR10 else TvCIFAR100
    md5 = dict(tv.train_list + tv.test_list).get(path.name)
    if md5 is not None and not check_integrity(str(path), md5):
        data_warning(
            f"{path} differs from the official {layout.name} file (md5 per torchvision): results on it are not "
            "comparable with RobustBench's"
        )


def ensure_cifar_split(layout: CifarLayout, split: str, data_dir: Path) -> None:
    """Make the batch files of ``split`` present (fetching them like :func:`load_cifar`), without decoding them."""
    if split not in layout.splits:
        raise HarnessError(f"unknown split {split!r} of {layout.name}", "use train or test")
    if not all((Path(data_dir) / layout.folder / name).is_file() for name in layout.splits[split]):
        _fetch(layout, split, Path(data_dir))


def _fetch(layout: CifarLayout, split: str, data_dir: Path) -> None:
    folder = data_dir / layout.folder
    try:
        _download(layout, data_dir)
    except Exception as exc:  # no network: URLError; a bad archive: RuntimeError
        missing = [name for name in layout.splits[split] if not (folder / name).is_file()]
        raise HarnessError(
            f"{layout.name} {split} files missing in {folder} ({', '.join(missing)}) and downloading failed "
            f"({type(exc).__name__})",
            f"unpack {layout.archive} (python version, {CIFAR_URL}) into {data_dir} so that {folder} holds "
            f"{', '.join(layout.splits[split])} and {layout.meta}, or place the archive itself in {data_dir}",
        ) from None
    if not all((folder / name).is_file() for name in layout.splits[split]):
        raise HarnessError(f"{layout.name} download did not produce {folder}", f"see {CIFAR_URL}")


def _download(layout: CifarLayout, data_dir: Path) -> None:
    """torchvision's download (verifies the archive's md5, reuses one already in ``data_dir``, unpacks it)."""
    from torchvision.datasets import CIFAR10 as TvCIFAR10
    from torchvision.datasets import CIFAR100 as TvCIFAR100

    (TvCIFAR10 if layout is CIFAR10 else TvCIFAR100)(str(data_dir), train=False, download=True)
