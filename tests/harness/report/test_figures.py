import warnings

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from harness.report import figures

NAMES = ["zero", "one", "two", "three"]


def _images(n: int = 3, c: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, c, 28, 28)).astype(np.float32)


def _read(path) -> np.ndarray:
    assert path.is_file() and path.suffix == ".png"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert 100 <= img.shape[0] <= 3000 and 100 <= img.shape[1] <= 3000
    assert np.isfinite(img).all()
    return img


def _red_pixels(img: np.ndarray) -> int:
    """Pixels close to the figures' red (#d62728) marker colour."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return int(((r > 0.7) & (g < 0.35) & (b < 0.35)).sum())


def test_attribution_grid_writes_png_and_shows_the_sign(tmp_path):
    x, y = _images(), np.array([0, 1, 2])
    ones = np.ones_like(x)
    pos = _read(figures.attribution_grid(x, y, {"grad": ones}, tmp_path / "pos.png", class_names=NAMES, title="t"))
    neg = _read(figures.attribution_grid(x, y, {"grad": -ones}, tmp_path / "neg.png", class_names=NAMES, title="t"))
    assert pos.shape == neg.shape

    def red_minus_blue(img):
        return float(img[..., 0].mean() - img[..., 2].mean())

    assert red_minus_blue(pos) > red_minus_blue(neg) + 0.05


def test_attribution_grid_all_zero_and_torch_inputs(tmp_path):
    x = torch.rand(3, 3, 28, 28)
    attrs = {"zero": torch.zeros_like(x), "grad": torch.randn(3, 3, 28, 28, requires_grad=True) * 1.0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no NaN / divide-by-zero RuntimeWarnings
        path = figures.attribution_grid(x, torch.tensor([0, 1, 2]), attrs, tmp_path / "zero.png")
    _read(path)


@pytest.mark.parametrize("channels", [1, 3])
def test_adversarial_examples_colours_changed_predictions(tmp_path, channels):
    x = _images(c=channels)
    x_adv = np.clip(x + 0.05 * np.sign(np.random.default_rng(1).standard_normal(x.shape)), 0, 1)
    y = np.array([0, 1, 2])
    kept = _read(
        figures.adversarial_examples(
            x, x_adv, y, y, y, tmp_path / "kept.png", class_names=NAMES, eps=0.05, threat_model="Linf"
        )
    )
    flipped = _read(
        figures.adversarial_examples(
            x, x_adv, y, y, (y + 1) % 4, tmp_path / "flip.png", class_names=NAMES, eps=0.05, threat_model="Linf"
        )
    )
    if channels == 1:  # grey images: red can only come from the "prediction changed" titles
        assert _red_pixels(kept) == 0
    assert _red_pixels(flipped) > _red_pixels(kept)


def test_adversarial_examples_zero_perturbation_and_fixed_amplify(tmp_path):
    x = torch.rand(2, 1, 28, 28)
    y = torch.tensor([1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _read(figures.adversarial_examples(x, x.clone(), y, y, y, tmp_path / "same.png"))
        _read(figures.adversarial_examples(x, x + 0.01, y, y, y, tmp_path / "amp.png", amplify=10.0))


def test_inversion_grid(tmp_path):
    t = _images()
    seeds = {"other image": _images(seed=1), "noise": _images(seed=2)}
    inversions = {"other image": _images(seed=3), "noise": torch.from_numpy(_images(seed=4))}
    img = _read(figures.inversion_grid(t, seeds, inversions, tmp_path / "inv.png", title="inversion"))
    assert img.shape[1] > img.shape[0]  # 5 columns, 3 rows
    with pytest.raises(ValueError, match="noise"):
        figures.inversion_grid(t, seeds, {"other image": t}, tmp_path / "bad.png")


def test_generated_grid_marks_judge_disagreement(tmp_path):
    x = _images(n=6)
    classes = np.array([2, 0, 0, 2, 1, 0])
    agree = _read(figures.generated_grid(x, classes, tmp_path / "agree.png", class_names=NAMES, judge_pred=classes))
    judge = classes.copy()
    judge[1] = 3
    differ = _read(
        figures.generated_grid(x, classes, tmp_path / "differ.png", class_names=NAMES, judge_pred=judge, per_class=2)
    )
    assert _red_pixels(agree) == 0
    assert _red_pixels(differ) > 50  # the red frame around the mismatched image
    _read(figures.generated_grid(x, classes, tmp_path / "plain.png"))


@pytest.mark.parametrize("n_points", [0, 1, 3])
def test_scatter_plot(tmp_path, n_points):
    points = [
        {"label": "standard", "x": 0.9, "y": 0.01, "x_err": (0.88, 0.92), "y_err": (0.0, 0.03)},
        {"label": "pgd", "x": 0.85, "y": 0.7, "x_err": None, "y_err": (0.65, None)},
        {"label": "trades", "x": 0.8, "y": 0.72},
    ][:n_points]
    img = _read(figures.scatter_plot(points, tmp_path / "s.png", x_label="clean", y_label="robust", title="t"))
    assert img.shape[0] > 200 and img.shape[1] > 300


def test_missing_parent_directories_are_created(tmp_path):
    path = tmp_path / "a" / "b" / "c.png"
    out = figures.scatter_plot([], path, x_label="x", y_label="y")
    assert out == path and path.is_file()
