"""The values a test compares (harness/report/values.py): the stored variant a basis reads, the shared and correctly
classified images, and normalisation between each model's own floor and ceiling, on hand-built scores."""

from __future__ import annotations

import numpy as np
import pytest

from harness.report.values import PRIMARY, Basis, own_normalised, scored_metric, select
from metrics.normalise import normalised_score
from tests.harness.report.builders import entry, score

EG = "expected_gradients"
RAND = (EG, "randomisation")  # lower is better, paired by image, no floor or ceiling


def curve(method, floor, ceiling, keys, metric="abpc_logit"):
    """A curve score with its floor and ceiling rows, all keyed by image."""
    return {
        (EG, metric): score(method, keys),
        ("bound_floor", metric): score(floor, keys),
        ("bound_ceiling", metric): score(ceiling, keys),
    }


def test_a_basis_reads_the_variant_scored_on_the_explained_output_or_the_other_one():
    logit, probability = entry("a"), entry("b", output="probability")
    assert scored_metric([logit], "abpc") == "abpc_logit"
    assert scored_metric([probability], "abpc") == "abpc"
    assert scored_metric([logit], "abpc", Basis(explained_output=False)) == "abpc"
    assert scored_metric([logit], "abpc_road") == "abpc_road_logit"
    assert scored_metric([logit], "gridpg") == "gridpg"  # not a curve metric: its own variant
    assert scored_metric([logit, probability], "abpc") is None  # different explained outputs: not comparable


def test_raw_values_on_the_images_every_model_scored_and_classifies_correctly():
    a = entry("a", {RAND: score([0.1, 0.2, 0.3, 0.4], [0, 1, 2, 3])}, correct=[0, 1, 2, 3])
    b = entry("b", {RAND: score([0.5, 0.6, 0.7], [1, 2, 3])}, correct=[0, 1, 3])
    primary = select([a, b], RAND)
    assert primary.keys == (1, 3) and not primary.normalised and not primary.higher_is_better
    assert primary.matrix.tolist() == [[0.2, 0.4], [0.5, 0.7]]
    every = select([a, b], RAND, Basis(correct_only=False))
    assert every.keys == (1, 2, 3) and every.matrix.tolist() == [[0.2, 0.3, 0.4], [0.5, 0.6, 0.7]]
    assert select([a, entry("c")], RAND) is None  # c has no such score
    again = select([a, b], RAND, Basis(correct_only=True))
    assert again.keys == primary.keys and again.matrix.tolist() == primary.matrix.tolist()


def test_each_model_is_normalised_between_its_own_floor_and_ceiling_on_the_shared_images():
    keys = [0, 1, 2]
    a = entry("a", curve([0.3, 0.5, 0.4], [0.0, 0.1, 0.0], [0.6, 0.9, 0.6], keys), correct=keys)
    b = entry("b", curve([0.2, 0.1, 9.0], [0.0, 0.0, 0.0], [0.4, 0.2, 0.2], keys), correct=[0, 1])
    found = select([a, b], (EG, "abpc"))
    assert found.normalised and found.higher_is_better and found.keys == (0, 1)
    expected_a = normalised_score([0.3, 0.5], [0.0, 0.1], [0.6, 0.9], higher_is_better=True).per_image
    assert found.matrix[0] == pytest.approx(expected_a)  # (m - f) / mean(c - f) = [0.3, 0.4] / 0.7
    assert found.matrix[1] == pytest.approx([0.2 / 0.3, 0.1 / 0.3])
    raw = select([a, b], (EG, "abpc"), Basis(normalised=False))
    assert not raw.normalised and raw.matrix.tolist() == [[0.3, 0.5], [0.2, 0.1]]


def test_a_model_whose_output_merely_moves_less_gets_the_same_normalised_values():
    """Mixing the output probabilities with the uniform distribution scales method, floor and ceiling by lambda
    (plus a constant for single-curve scores): the raw values shrink, the normalised ones do not."""
    rng = np.random.default_rng(0)
    m, f, c = rng.uniform(0.2, 0.4, 8), rng.uniform(0.0, 0.1, 8), rng.uniform(0.5, 0.8, 8)
    keys = list(range(8))
    sharp = entry("sharp", curve(m, f, c, keys), correct=keys)
    lam, const = 0.4, 0.03
    dull = entry("dull", curve(lam * m + const, lam * f + const, lam * c + const, keys), correct=keys)
    found = select([sharp, dull], (EG, "abpc"))
    assert found.matrix[0] == pytest.approx(found.matrix[1], abs=1e-12)
    raw = select([sharp, dull], (EG, "abpc"), Basis(normalised=False))
    assert raw.means[1] == pytest.approx(lam * raw.means[0] + const)


def test_missing_bounds_or_no_room_leave_every_model_raw_and_say_why():
    keys = [0, 1]
    a = entry("a", curve([0.3, 0.5], [0.0, 0.0], [0.6, 0.6], keys), correct=keys)
    old = entry("old", {(EG, "abpc_logit"): score([0.2, 0.1], keys)}, correct=keys)
    found = select([a, old], (EG, "abpc"))
    assert not found.normalised and "old has no floor and ceiling" in found.note
    assert found.matrix.tolist() == [[0.3, 0.5], [0.2, 0.1]]
    flat = entry("flat", curve([0.1, 0.15], [0.2, 0.2], [0.1, 0.2], keys), correct=keys)  # no order above the floor
    found = select([a, flat], (EG, "abpc"))
    assert not found.normalised and "flat: the ceiling is not above the floor" in found.note


def test_a_models_own_normalised_score_on_all_its_images():
    keys = [0, 1, 2, 3]
    a = entry("a", curve([0.3, 0.5, 0.4, 0.2], [0.0, 0.1, 0.0, 0.1], [0.6, 0.9, 0.6, 0.5], keys))
    own = own_normalised(a, "abpc")
    assert own.mean == pytest.approx((0.3 + 0.4 + 0.4 + 0.1) / 4 / ((0.6 + 0.8 + 0.6 + 0.4) / 4))
    assert own.n == 4 and own.low <= own.mean <= own.high
    assert own_normalised(entry("b", {(EG, "abpc_logit"): score([0.1, 0.2], [0, 1])}), "abpc") is None
    assert PRIMARY.normalised and PRIMARY.correct_only and PRIMARY.explained_output


def test_the_ceiling_is_raised_to_the_best_order_every_compared_model_scored():
    """A method that beats the stored (occlusion) ceiling raises it: no model's ceiling is one its own orders beat.
    In a comparison only the orders every model scored count; occlusion's ceiling alone is the sensitivity basis."""
    keys = [0, 1]
    inverse = {("control_inverse", "abpc_logit"): score([0.1, 1.0], keys)}
    a = entry("a", {**curve([0.8, 0.5], [0.0, 0.0], [0.6, 0.9], keys), **inverse}, correct=keys)
    b = entry("b", curve([0.2, 0.1], [0.0, 0.0], [0.4, 0.2], keys), correct=keys)  # b has no control_inverse
    found = select([a, b], (EG, "abpc"))
    assert found.matrix[0] == pytest.approx([0.8 / 0.85, 0.5 / 0.85])  # ceilings max(0.6, 0.8), max(0.9, 0.5)
    assert found.matrix[1] == pytest.approx([0.2 / 0.3, 0.1 / 0.3])  # b's own ceiling already above its method
    occlusion = select([a, b], (EG, "abpc"), Basis(best_ceiling=False))
    assert occlusion.matrix[0] == pytest.approx([0.8 / 0.75, 0.5 / 0.75]) and occlusion.means[0] > 0.86
    assert select([a, a], (EG, "abpc")).matrix[0] == pytest.approx([0.8 / 0.9, 0.5 / 0.9])  # control_inverse is common
    own = own_normalised(a, "abpc")  # a's own orders: the ceilings are 0.8 and 1.0
    assert own.mean == pytest.approx(0.65 / 0.9)
    assert own_normalised(a, "abpc", best_ceiling=False).mean == pytest.approx(0.65 / 0.75)
    assert "occlusion" in Basis(best_ceiling=False).label and "occlusion" not in PRIMARY.label
