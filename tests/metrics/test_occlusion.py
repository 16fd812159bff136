"""Single-pixel (and patch) occlusion: against a loop that replaces one feature at a time and runs the model on every
occluded image, on real Fashion-MNIST images with a float64 copy of the shipped model; the log-odds against
log(p / (1 - p)); batching; bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from metrics.functional import pixel_occlusion
from tests.metrics.conftest import LinearScore
from tests.metrics.rounding import Float64, logit_error_bound


def _loop(model, x, target, fill, patch_size):
    """Drops of the target logit and of log(p / (1 - p)) (from float64 softmax), one occluded image at a time."""
    n, c, h, w = x.shape
    p = patch_size
    logit, log_odds = torch.zeros(n, 1, h, w, dtype=torch.float64), torch.zeros(n, 1, h, w, dtype=torch.float64)

    def scores(images, t):
        z = model(images).double()
        prob = z.softmax(dim=1)[:, t]
        return z[:, t], torch.log(prob / (1 - prob))

    with torch.no_grad():
        for i in range(n):
            occluded = []
            for r in range(0, h, p):
                for col in range(0, w, p):
                    image = x[i].clone()
                    image[:, r : r + p, col : col + p] = fill[i, :, r : r + p, col : col + p]
                    occluded.append(image)
            z0, o0 = scores(x[i : i + 1], target[i])
            z, o = scores(torch.stack(occluded), target[i])
            for k, (r, col) in enumerate((r, col) for r in range(0, h, p) for col in range(0, w, p)):
                logit[i, 0, r : r + p, col : col + p] = z0 - z[k]
                log_odds[i, 0, r : r + p, col : col + p] = o0 - o[k]
    return logit, log_odds


@pytest.mark.parametrize("patch_size", [1, 4])
def test_occlusion_matches_a_loop_over_occluded_images(patch_size, standard_model, images):
    x, y = images[0][:2].double(), images[1][:2]
    fill = torch.rand(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = Float64(standard_model)
    maps = pixel_occlusion(model, x, y, fill=fill, patch_size=patch_size, batch_size=100)
    logit, log_odds = _loop(model, x, y, fill, patch_size)
    # two float64 logits per drop on each side (bound's error each), maps stored as float32 (relative 2^-24)
    error = 4 * float(logit_error_bound(standard_model, (1, 28, 28)).error.max())
    assert error < 1e-4
    for ours, oracle in ((maps.logit, logit), (maps.log_odds, log_odds)):
        assert ours.shape == (2, 1, 28, 28) and ours.dtype == torch.float32
        tol = error + 2.0**-23 * oracle.abs() + 1e-12
        assert bool(((ours.double() - oracle).abs() <= tol).all())
    assert float(maps.logit.abs().max()) > 0.1  # the occlusion moves the model: a real test


def test_log_odds_ranks_like_the_probability_and_survives_saturation():
    """Two classes, logits [w . x, 0]: log-odds = w . x exactly, so its drop is w_j (x_j - fill_j) even where the
    float32 probability is 1 for every occluded image (w . x = 40: p = 1 - 4e-18)."""
    w = torch.linspace(0.5, 2.0, 16).reshape(1, 1, 4, 4)
    model = LinearScore(w * 40 / w.sum())
    x, fill = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    maps = pixel_occlusion(model, x, torch.zeros(2, dtype=torch.int64), fill=fill)
    expected = (w * 40 / w.sum()).expand(2, 1, 4, 4)
    np.testing.assert_allclose(maps.log_odds.numpy(), expected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(maps.logit.numpy(), expected.numpy(), rtol=1e-5)
    with torch.no_grad():
        assert bool((model(x).softmax(1)[:, 0] == 1.0).all())  # the probability itself is saturated


def test_batch_size_and_channels(standard_model, images):
    """Any batch size gives the same maps (float64 model; 2x2 patches, 197 occluded images per image, so that batches
    of 3 straddle the images); a pixel is all its channels (a 3-channel model that averages its channels sees the same
    drop as the grey image would)."""
    x, y = images[0][:2].double(), images[1][:2]
    fill = torch.rand(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    model = Float64(standard_model)
    a = pixel_occlusion(model, x, y, fill=fill, patch_size=2, batch_size=3)
    b = pixel_occlusion(model, x, y, fill=fill, patch_size=2, batch_size=1000)
    error = 4 * float(logit_error_bound(standard_model, (1, 28, 28)).error.max())
    for u, v in zip(a, b, strict=True):
        assert float((u - v).abs().max()) <= error + 2.0**-23 * float(v.abs().max())
    grey = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 1, bias=False), model)
    with torch.no_grad():
        grey[0].weight.fill_(1 / 3)
    grey = grey.double()
    colour = pixel_occlusion(
        grey, x.expand(-1, 3, -1, -1), y, fill=fill.expand(-1, 3, -1, -1), patch_size=2, batch_size=1000
    )
    for u, v in zip(colour, b, strict=True):
        assert float((u - v).abs().max()) <= error + 2.0**-23 * float(v.abs().max()) + 1e-12


def test_bad_arguments(standard_model, images):
    x, y = images[0][:2], images[1][:2]
    with pytest.raises(ValueError, match="fill must be"):
        pixel_occlusion(standard_model, x, y, fill=torch.zeros(1, 1, 28, 28))
    with pytest.raises(ValueError, match="fill contains NaN"):
        pixel_occlusion(standard_model, x, y, fill=torch.full_like(x, float("nan")))
    with pytest.raises(ValueError, match="patch_size 5 does not divide"):
        pixel_occlusion(standard_model, x, y, fill=x, patch_size=5)
    with pytest.raises(ValueError, match="NaN or infinite logits"):
        pixel_occlusion(lambda images: torch.full((len(images), 10), float("nan")), x, y, fill=x, patch_size=14)
    with pytest.raises(ValueError, match="logits of shape"):
        pixel_occlusion(lambda images: images.flatten(), x, y, fill=x, patch_size=14)
