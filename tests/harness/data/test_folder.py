"""``folder:PATH[@S|@HxW]`` data sets read from ImageFolder trees of real PNG and JPEG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from harness.data import dataset_paths, get_dataset, load_examples
from harness.data.folder import DEFAULT_SIZE, parse_folder_name
from harness.core.errors import HarnessError

# class -> file names, written in this (unsorted) order; classes sort as ant, cat, dog
FILES = {"dog": ["b.png", "a.png"], "cat": ["z.png", "m.png", "c.jpg"], "ant": ["only.png"]}
ORDER = [("ant", "only.png"), ("cat", "c.jpg"), ("cat", "m.png"), ("cat", "z.png"), ("dog", "a.png"), ("dog", "b.png")]


def _write_tree(root: Path, size: tuple[int, int] = (12, 10), seed: int = 0) -> dict[tuple[str, str], np.ndarray]:
    """Write FILES under root as (H, W) = size RGB images (one grayscale); returns the pixels written."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for cls, names in FILES.items():
        (root / cls).mkdir(parents=True)
        for name in names:
            array = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            if name == "a.png":  # grayscale file: read as RGB with three equal channels
                array = array[:, :, :1].repeat(3, axis=2)
                Image.fromarray(array[:, :, 0], mode="L").save(root / cls / name)
            else:
                Image.fromarray(array).save(root / cls / name)
            pixels[(cls, name)] = array
    (root / "cat" / "notes.txt").write_text("not an image")
    return pixels


def test_size_syntax():
    assert parse_folder_name("folder:/d/pets").size == DEFAULT_SIZE == (224, 224)
    assert parse_folder_name("folder:/d/pets@32").size == (32, 32)
    assert parse_folder_name("folder:/d/pets@32x48").size == (32, 48)
    assert parse_folder_name("folder:/d/pets@32X48").input_shape == (3, 32, 48)
    spec = parse_folder_name("folder:/d/me@home/pets@16")
    assert (spec.root, spec.size, spec.name) == (Path("/d/me@home/pets"), (16, 16), "folder:/d/me@home/pets@16x16")
    assert parse_folder_name("folder:/d/pets@big").root == Path("/d/pets@big")
    for bad, match in (("folder:/d/pets@0", "out of range"), ("folder:@32", "names no folder"),
                       ("folder:", "names no folder")):
        with pytest.raises(HarnessError, match=match):
            parse_folder_name(bad)


def test_native_size_pixels_labels_and_order(tmp_path):
    pixels = _write_tree(tmp_path / "test")
    name = f"folder:{tmp_path / 'test'}@12x10"
    x, y = load_examples(name, data_dir=tmp_path / "unused")
    assert x.shape == (6, 3, 12, 10) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.tolist() == [0, 1, 1, 1, 2, 2]  # ant, cat x3, dog x2
    for i, key in enumerate(ORDER):
        if key[1].endswith(".png"):  # lossless and already the stated size: exact pixels
            assert torch.equal((x[i] * 255).round().to(torch.uint8), torch.from_numpy(pixels[key]).permute(2, 0, 1))
    assert torch.equal(x[4, 0], x[4, 1]) and torch.equal(x[4, 1], x[4, 2])  # the grayscale file
    x3, y3 = load_examples(name, n=3)
    assert torch.equal(x3, x[:3]) and torch.equal(y3, y[:3])
    with pytest.raises(HarnessError, match="outside the 6 test images"):
        load_examples(name, n=7)


def test_dataset_info_and_resizing(tmp_path):
    _write_tree(tmp_path / "test")
    info = get_dataset(f"folder:{tmp_path / 'test'}@8x16")
    assert info.name == f"folder:{tmp_path / 'test'}@8x16" and info.input_shape == (3, 8, 16)
    assert info.classes == ("ant", "cat", "dog") and info.num_classes == 3
    assert info.default_threat_model == "Linf" and info.default_eps == {"Linf": "8/255", "L2": "0.5"}
    x, _ = load_examples(info.name, n=2)
    assert x.shape == (2, 3, 8, 16) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    x224, _ = load_examples(f"folder:{tmp_path / 'test'}", n=1)
    assert x224.shape == (1, 3, 224, 224)


def test_relative_path_is_resolved(tmp_path, monkeypatch):
    _write_tree(tmp_path / "sets" / "test")
    monkeypatch.chdir(tmp_path)
    info = get_dataset("folder:sets/test@4")
    assert info.name == f"folder:{tmp_path / 'sets' / 'test'}@4x4"
    assert dataset_paths("folder:sets/test@4") == (tmp_path / "sets" / "test",)


def test_train_split_is_the_sibling_train_folder(tmp_path):
    _write_tree(tmp_path / "val", seed=0)
    name = f"folder:{tmp_path / 'val'}@12x10"
    with pytest.raises(HarnessError, match=r"no training images .*train not found") as info:
        load_examples(name, split="train")
    assert "--methods" in str(info.value) and "\n" not in str(info.value)
    _write_tree(tmp_path / "train", seed=1)
    x_train, y_train = load_examples(name, split="train")
    x_val, _ = load_examples(name)
    assert x_train.shape == (6, 3, 12, 10) and not torch.equal(x_train, x_val)
    assert y_train.tolist() == [0, 1, 1, 1, 2, 2]
    assert dataset_paths(name) == (tmp_path / "val", tmp_path / "train")
    (tmp_path / "train" / "bee").mkdir()
    Image.new("RGB", (10, 12)).save(tmp_path / "train" / "bee" / "x.png")
    with pytest.raises(HarnessError, match="class folders of .*train differ"):
        load_examples(name, split="train")


def test_train_split_needs_a_val_or_test_folder(tmp_path):
    _write_tree(tmp_path / "mine")
    with pytest.raises(HarnessError, match="only next to a PATH ending in val or test"):
        load_examples(f"folder:{tmp_path / 'mine'}@8", split="train")


def test_missing_or_malformed_folders_are_one_line_errors(tmp_path):
    with pytest.raises(HarnessError) as info:
        get_dataset(f"folder:{tmp_path / 'nowhere'}@32")
    assert "\n" not in str(info.value) and str(tmp_path / "nowhere") in str(info.value)
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "flat" / "img.png")
    with pytest.raises(HarnessError, match="has no class subfolders"):
        get_dataset(f"folder:{tmp_path / 'flat'}")
    (tmp_path / "flat" / "empty_class").mkdir()
    with pytest.raises(HarnessError, match="no valid file for the classes empty_class") as info:
        load_examples(f"folder:{tmp_path / 'flat'}@4", n=1)
    assert "\n" not in str(info.value)
    (tmp_path / "flat" / "empty_class" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(HarnessError, match="cannot decode .*broken.png"):
        load_examples(f"folder:{tmp_path / 'flat'}@4", n=1)


def test_other_unknown_names_still_suggest():
    with pytest.raises(HarnessError, match="did you mean cifar10"):
        get_dataset("cifar1O")
