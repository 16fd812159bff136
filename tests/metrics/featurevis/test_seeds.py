"""The seeds of a run's feature visualisation (metrics.featurevis.seeds): the ones the worker starts from are the
ones the parent derives from its own data, and what is skipped says why."""

from __future__ import annotations

import pytest
import torch

from harness.data import load_examples
from metrics.featurevis.config import FeatureVisConfig
from metrics.featurevis.inversion import noise_seeds, other_image_seeds
from metrics.featurevis.pipeline import visualise
from metrics.featurevis.seeds import derive_seeds, seed_downsample

CONFIG = FeatureVisConfig(n_inversion=4, inversion_steps=3, per_class=2, generation_steps=2, seed=5)


@pytest.fixture(scope="module")
def train(data_dir):
    return load_examples("fashion-mnist", split="train", n=2000, data_dir=data_dir)


def test_the_worker_starts_from_the_derived_seeds(standard_model, images, train):
    x, y = images
    out = visualise(standard_model, x, y, *train, config=CONFIG, num_classes=10, device=torch.device("cpu"))
    seeds = derive_seeds(x, y, *train, config=CONFIG, num_classes=10)
    inv = seeds.inversion
    assert torch.equal(inv.targets, x[:4])
    assert torch.equal(inv.other_index, out["inversion"]["kinds"]["other image"]["seed_index"])
    assert torch.equal(inv.seeds["other image"], other_image_seeds(x[:4], y[:4])[0])
    assert torch.equal(inv.seeds["noise"], noise_seeds((4, 1, 28, 28), generator=torch.Generator().manual_seed(5)))
    gen = seeds.generation
    assert gen.classes.tolist() == [k for k in range(10) for _ in range(2)]
    assert torch.equal(gen.seeds, out["generation"]["seeds"]) and gen.downsample == 4
    assert seeds.skipped == {}


def test_what_has_no_seeds_says_why(images, train):
    x, y = images
    seeds = derive_seeds(x[:1], y[:1], *train, config=CONFIG, num_classes=10)
    assert seeds.inversion is None and "at least 2 test images" in seeds.skipped["inversion"]
    odd = torch.rand(3, 1, 30, 30, generator=torch.Generator().manual_seed(0))
    seeds = derive_seeds(odd, torch.tensor([0, 1, 2]), odd, torch.tensor([0, 1, 2]), config=CONFIG, num_classes=3)
    assert seeds.generation is None and seeds.skipped["generation"] == (
        "images of 30x30 cannot be pooled by 4 for the seed Gaussians"
    )
    assert seeds.inversion is not None and len(seeds.inversion.targets) == 3


def test_seed_downsample_keeps_the_gaussians_small():
    assert seed_downsample((1, 28, 28), 4) == 4  # 49 dimensions
    assert seed_downsample((3, 64, 64), 4) == 4  # 3 * 16 * 16 = 768
    assert seed_downsample((3, 128, 128), 4) == 8  # 3 * 32 * 32 = 3072 > 1024, then 768
    assert seed_downsample((3, 224, 224), 4) == 16  # 9408, 2352, then 588
    assert seed_downsample((3, 100, 100), 4) == 4  # 1875 > 1024, but 8 does not divide 100: kept


def test_bad_settings_are_refused(images, train):
    x, y = images
    for bad, name in (({"inversion_window": 0}, "inversion_window"), ({"inversion_tol": 1.5}, "inversion_tol")):
        with pytest.raises(ValueError, match=name):
            derive_seeds(x, y, *train, config=FeatureVisConfig(**bad), num_classes=10)
