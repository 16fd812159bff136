"""ImageNet read from a small validation tree named after the first entries of RobustBench's image list."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.core.autoattack_shim import import_robustbench
from harness.data import get_dataset, load_examples
from harness.data.imagenet import CLASS_MAP, IMAGE_LIST, class_to_idx, imagenet_classes
from harness.core.errors import HarnessError

K = 5  # images written: the first K of RobustBench's list
SIZES = [(300, 260), (256, 400), (500, 375), (224, 224), (333, 600)]  # (width, height), JPEG


def _robustbench_file(name: str) -> Path:
    return Path(import_robustbench().__file__).parent / name


@pytest.fixture(scope="module")
def listed() -> list[str]:
    """RobustBench's 5000 ``<wnid>/<file>`` lines, in order."""
    return _robustbench_file(IMAGE_LIST).read_text().split()


def _write_tree(root: Path, listed: list[str], *, all_classes: bool = False) -> Path:
    val = root / "imagenet" / "val"
    rng = np.random.default_rng(0)
    for line, (w, h) in zip(listed[:K], SIZES, strict=True):
        path = val / line
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path, "JPEG", quality=90)
    if all_classes:  # a complete validation tree has a folder for every one of the 1000 classes
        for wnid in class_to_idx():
            (val / wnid).mkdir(exist_ok=True)
    return val


def test_first_n_follow_robustbench_list_labels_and_preprocessing(tmp_path, listed):
    from robustbench.data import PREPROCESSINGS

    val = _write_tree(tmp_path, listed)
    x, y = load_examples("imagenet", n=K, data_dir=tmp_path)
    assert x.shape == (K, 3, 224, 224) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    mapping = json.loads(_robustbench_file(CLASS_MAP).read_text())
    assert y.tolist() == [mapping[line.split("/")[0]] for line in listed[:K]]
    for i, line in enumerate(listed[:K]):  # Resize 256, CenterCrop 224, ToTensor of the RGB image
        expected = PREPROCESSINGS["Res256Crop224"](Image.open(val / line).convert("RGB"))
        assert torch.equal(x[i], expected)
    x2, y2 = load_examples("imagenet", n=2, data_dir=tmp_path)
    assert torch.equal(x2, x[:2]) and torch.equal(y2, y[:2])


def test_equals_robustbench_custom_image_folder_on_a_complete_tree(tmp_path, listed):
    from robustbench.data import PREPROCESSINGS
    from robustbench.loaders import CustomImageFolder

    val = _write_tree(tmp_path, listed, all_classes=True)
    x, y = load_examples("imagenet", n=K, data_dir=tmp_path)
    ref = CustomImageFolder(str(val), PREPROCESSINGS["Res256Crop224"])
    assert len(ref) == 5000
    for i in range(K):
        ref_x, ref_y, ref_path = ref[i]
        assert ref_path == str(val / listed[i])
        assert torch.equal(x[i], ref_x) and int(y[i]) == ref_y


def test_registry_entry(listed):
    info = get_dataset("imagenet")
    assert info.test_size == len(listed) == 5000  # RobustBench's list is the whole test set it evaluates
    assert (info.num_classes, info.input_shape, info.default_threat_model) == (1000, (3, 224, 224), "Linf")
    assert info.default_eps == {"Linf": "4/255", "L2": "3.0"}
    assert info.classes == imagenet_classes() and info.classes[:2] == ("n01440764", "n01443537")
    assert not info.has_object_masks


def test_missing_folder_is_one_line_naming_it(tmp_path):
    with pytest.raises(HarnessError) as info:
        load_examples("imagenet", n=4, data_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "imagenet" / "val") in message and "<wnid>" in message


def test_missing_images_name_the_first_missing_file(tmp_path, listed):
    val = _write_tree(tmp_path, listed)
    with pytest.raises(HarnessError, match=f"1 of the first {K + 1} images .* missing, e.g. {val / listed[K]}"):
        load_examples("imagenet", n=K + 1, data_dir=tmp_path)
    with pytest.raises(HarnessError, match="outside the 5000 test images of imagenet"):
        load_examples("imagenet", n=5001, data_dir=tmp_path)


def test_train_split_explains_which_methods_need_it(tmp_path):
    with pytest.raises(HarnessError, match="expected_gradients") as info:
        load_examples("imagenet", split="train", data_dir=tmp_path)
    assert "--methods" in str(info.value) and "\n" not in str(info.value)
