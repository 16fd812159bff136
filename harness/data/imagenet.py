"""ImageNet: RobustBench's fixed 5000 validation images, in its order, with its class index and preprocessing.

Layout, under the data dir: ``imagenet/val/<wnid>/<file>.JPEG`` (the ILSVRC2012 validation images sorted into
one folder per class, as for torchvision's ImageFolder). Only the images named in RobustBench's list are
read, so a folder holding just those 5000 images is enough.

What comes from robustbench 1.1.1 (imported through :func:`harness.core.autoattack_shim.import_robustbench`):

- the image list ``helper_files/imagenet_test_image_ids.txt`` (5000 ``<wnid>/<file>`` lines), read by its own
  ``robustbench.loaders.make_custom_dataset``; example i is line i, so the first n are RobustBench's first n;
- the class index ``helper_files/imagenet_class_to_id_map.json`` (wnid -> 0..999, the sorted-wnid order);
- the image loader ``robustbench.loaders.default_loader`` (PIL, converted to RGB) and the preprocessing
  ``robustbench.data.PREPROCESSINGS["Res256Crop224"]`` (Resize 256, CenterCrop 224, ToTensor).

This is what ``robustbench.data.load_imagenet`` does through ``CustomImageFolder``, with one difference:
``CustomImageFolder`` numbers the classes by the subfolders that exist, which shifts every later label when
a class folder is missing. The 5000 images cover only 997 of the 1000 classes, so a folder holding just them
would be mislabelled; labels here come from RobustBench's class map, which gives the same labels as
``CustomImageFolder`` on a complete validation folder (the tests check this).
"""

from __future__ import annotations

import json
from functools import cache
from importlib.util import find_spec
from pathlib import Path

import torch

from harness.core.errors import HarnessError

IMAGE_LIST = "helper_files/imagenet_test_image_ids.txt"
CLASS_MAP = "helper_files/imagenet_class_to_id_map.json"
PREPROCESSING = "Res256Crop224"
IMAGENET_URL = "https://image-net.org/challenges/LSVRC/2012/"


def imagenet_root(data_dir: Path) -> Path:
    """The validation folder read: ``data_dir/imagenet/val``."""
    return Path(data_dir) / "imagenet" / "val"


@cache
def class_to_idx() -> dict[str, int]:
    """RobustBench's wnid -> class index map (1000 entries), read without importing robustbench."""
    spec = find_spec("robustbench")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("robustbench is not installed", "pip install robustbench==1.1.1")
    path = Path(next(iter(spec.submodule_search_locations))) / CLASS_MAP
    with open(path) as fh:
        return json.load(fh)


def imagenet_classes() -> tuple[str, ...]:
    """The 1000 wnids in class-index order."""
    mapping = class_to_idx()
    return tuple(sorted(mapping, key=mapping.__getitem__))


def load_imagenet_first(split: str, data_dir: Path, n: int | None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The first ``n`` (all if None) of RobustBench's 5000 images: x ``(n, 3, 224, 224)`` in [0, 1], y ``(n,)``.

    Returns ``(x, y, total)`` with ``total`` = 5000, the size of the list.

    Raises:
        HarnessError: a split other than ``test``; the validation folder or one of the first n images missing.
    """
    if split != "test":
        raise HarnessError(
            f"imagenet has no {split!r} split here: only RobustBench's 5000 validation images are supported "
            "(the harness asks for training images only as background for expected_gradients and gradient_shap)",
            "choose --methods without expected_gradients and gradient_shap, e.g. "
            "--methods integrated_gradients,saliency",
        )
    root = imagenet_root(data_dir)
    if not root.is_dir():
        raise HarnessError(
            f"ImageNet validation folder {root} not found",
            f"place the ILSVRC2012 validation images ({IMAGENET_URL}) there as <wnid>/<file>.JPEG "
            "(at least the 5000 listed in robustbench/helper_files/imagenet_test_image_ids.txt), or pass --data-dir",
        )
    robustbench_loaders, preprocess = _robustbench_parts()
    samples = robustbench_loaders.make_custom_dataset(str(root), IMAGE_LIST, class_to_idx())
    total = len(samples)
    if n is not None and not 1 <= n <= total:  # load_examples reports it; decode nothing
        return torch.empty(0, 3, 224, 224), torch.empty(0, dtype=torch.int64), total
    chosen = samples if n is None else samples[:n]
    missing = [path for path, _ in chosen if not Path(path).is_file()]
    if missing:
        raise HarnessError(
            f"{len(missing)} of the first {len(chosen)} images of RobustBench's ImageNet list are missing, "
            f"e.g. {missing[0]}",
            f"place the ILSVRC2012 validation images ({IMAGENET_URL}) in {root} as <wnid>/<file>.JPEG",
        )
    x = torch.empty(len(chosen), 3, 224, 224)
    for i, (path, _) in enumerate(chosen):
        try:
            x[i] = preprocess(robustbench_loaders.default_loader(path))
        except OSError as exc:  # PIL's UnidentifiedImageError is an OSError
            raise HarnessError(f"cannot decode {path}: {exc}", "replace it with the original file") from None
    y = torch.tensor([label for _, label in chosen], dtype=torch.int64)
    return x, y, total


def load_imagenet(split: str, data_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """All 5000 images of RobustBench's list (about 3 GB as float32): prefer :func:`load_imagenet_first`."""
    x, y, _ = load_imagenet_first(split, data_dir, None)
    return x, y


def _robustbench_parts():
    from harness.core.autoattack_shim import import_robustbench

    import_robustbench()
    import robustbench.loaders
    from robustbench.data import PREPROCESSINGS

    return robustbench.loaders, PREPROCESSINGS[PREPROCESSING]
