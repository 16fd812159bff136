"""Any image-classification test set in torchvision's ImageFolder layout, named ``folder:PATH``.

Syntax of the data set name::

    folder:PATH            PATH/<class>/<image>, images resized to 224x224 RGB
    folder:PATH@32         ... resized to 32x32
    folder:PATH@32x48      ... resized to height 32, width 48

``PATH`` may be relative (to the current directory) and may contain ``@``; only a final ``@<int>`` or
``@<int>x<int>`` is read as the size. The canonical name (:attr:`FolderSpec.name`) has the absolute path and
the size spelled out: ``folder:/abs/PATH@32x32``.

Reading is torchvision's ``ImageFolder``: classes are the subfolder names sorted (class i = i-th name),
files with an image extension are taken in sorted order within each class, so example order is
(class, file name) and deterministic; each image is converted to RGB and resized to the stated size
(bilinear, antialiased; an image already of that size is left as it is), then scaled to [0, 1].

The ``train`` split (asked for only as background for expected_gradients and gradient_shap) is a sibling
``train/`` folder with the same classes, looked for when PATH ends in ``val`` or ``test``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.core.errors import HarnessError

FOLDER_PREFIX = "folder:"
DEFAULT_SIZE = (224, 224)
MAX_SIDE = 4096
_SIZE_SUFFIX = re.compile(r"@(\d+)(?:[xX](\d+))?$")
_TRAIN_FIX = "or leave expected_gradients and gradient_shap out of --methods (only they need training images)"


@dataclass(frozen=True)
class FolderSpec:
    """A parsed ``folder:`` name: the test folder (absolute) and the input size ``(H, W)``."""

    root: Path
    size: tuple[int, int]

    @property
    def name(self) -> str:
        return f"{FOLDER_PREFIX}{self.root}@{self.size[0]}x{self.size[1]}"

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (3, *self.size)


def parse_folder_name(name: str) -> FolderSpec:
    """Parse ``folder:PATH[@S | @HxW]``.

    >>> parse_folder_name("folder:/data/pets@32").name
    'folder:/data/pets@32x32'
    >>> parse_folder_name("folder:/data/pets@64x48").size
    (64, 48)
    >>> parse_folder_name("folder:/data/pets").size
    (224, 224)
    """
    if not name.startswith(FOLDER_PREFIX):
        raise ValueError(f"name must start with {FOLDER_PREFIX!r}, got {name!r}")
    path, size = name[len(FOLDER_PREFIX) :], DEFAULT_SIZE
    match = _SIZE_SUFFIX.search(path)
    if match:
        h = int(match.group(1))
        w = int(match.group(2)) if match.group(2) is not None else h
        path, size = path[: match.start()], (h, w)
        if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
            raise HarnessError(f"image size {h}x{w} in {name!r} is out of range", f"use 1..{MAX_SIDE} per side")
    if not path:
        raise HarnessError(f"data set {name!r} names no folder", "use folder:PATH, folder:PATH@32 or folder:PATH@32x32")
    return FolderSpec(Path(path).expanduser().resolve(), size)


def folder_classes(root: Path) -> tuple[str, ...]:
    """The class folder names under ``root``, sorted (torchvision's ``find_classes``).

    Raises:
        HarnessError: ``root`` is not a folder or has no subfolders.
    """
    from torchvision.datasets.folder import find_classes

    if not root.is_dir():
        raise HarnessError(
            f"image folder {root} not found", "give folder:PATH where PATH/<class>/<image> holds the test images"
        )
    try:
        classes, _ = find_classes(str(root))
    except FileNotFoundError:
        raise HarnessError(
            f"image folder {root} has no class subfolders", "arrange the images as PATH/<class>/<image>"
        ) from None
    return tuple(classes)


def split_root(spec: FolderSpec, split: str) -> Path:
    """The folder holding ``split``: PATH for ``test``; the sibling ``train/`` for ``train``."""
    if split == "test":
        return spec.root
    if split != "train":
        raise HarnessError(f"unknown split {split!r} of {spec.name}", "use train or test")
    sibling = spec.root.parent / "train"
    if spec.root.name not in ("val", "test"):
        raise HarnessError(
            f"no training images for {spec.name}: a train split is looked for only next to a PATH ending in "
            "val or test",
            f"arrange the data as DIR/test/<class>/<image> and DIR/train/<class>/<image>, {_TRAIN_FIX}",
        )
    if not sibling.is_dir():
        raise HarnessError(
            f"no training images for {spec.name}: {sibling} not found",
            f"place the training images in {sibling}/<class>/<image>, {_TRAIN_FIX}",
        )
    return sibling


def load_folder_first(spec: FolderSpec, split: str, n: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The first ``n`` (all if None) images of a split: x ``(n, 3, H, W)`` in [0, 1], y ``(n,)`` int64.

    Returns ``(x, y, total)``, ``total`` being the number of images in the split.

    Raises:
        HarnessError: missing folders, a class folder without images, train classes unlike the test classes, or
            an image that does not decode.
    """
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    root = split_root(spec, split)
    classes = folder_classes(root)
    if split != "test" and classes != folder_classes(spec.root):
        raise HarnessError(
            f"the class folders of {root} differ from those of {spec.root}",
            "give both splits the same <class> subfolders",
        )
    h, w = spec.size
    transform = transforms.Compose([transforms.Resize((h, w)), transforms.ToTensor()])
    try:
        dataset = ImageFolder(str(root), transform=transform)
    except FileNotFoundError as exc:  # a class folder without image files
        raise HarnessError(
            f"{root}: {exc}".split(". Supported")[0], "put at least one .png/.jpg image in every class folder"
        ) from None
    total = len(dataset)
    count = total if n is None else n if 1 <= n <= total else 0  # out of range: load_examples reports it
    x = torch.empty(count, 3, h, w)
    for i in range(count):
        try:
            x[i] = dataset[i][0]
        except OSError as exc:  # PIL's UnidentifiedImageError is an OSError
            raise HarnessError(f"cannot decode {dataset.samples[i][0]}: {exc}", "replace or remove it") from None
    y = torch.tensor(dataset.targets[:count], dtype=torch.int64)
    return x, y, total


def folder_paths(spec: FolderSpec) -> tuple[Path, ...]:
    """The folders a ``folder:`` data set may read (the test folder and, if present, its train sibling)."""
    sibling = spec.root.parent / "train"
    has_train = spec.root.name in ("val", "test") and sibling.is_dir()
    return (spec.root, sibling) if has_train else (spec.root,)
