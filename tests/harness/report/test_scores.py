"""Stored scores as the board reads them, and the selection functions that pair per-example values
(harness/report/scores.py), on hand-built values."""

import numpy as np
import pytest

from harness import store
from harness.report.scores import Score, aligned, common_matrix, stored_score


def _record(values, details, mean=0.5):
    return store.MetricRecord(
        run_id="r",
        method="m",
        metric="x",
        mean=mean,
        std=0.1,
        n=len(values),
        ci_low=0.4,
        ci_high=0.6,
        values=values,
        details=details,
    )


def test_stored_score_reads_keys_from_image_indices_or_composite_rows():
    by_image = stored_score(_record([1.0, 2.0], {"index": [3, 7]}))
    assert (by_image.mean, by_image.low, by_image.high, by_image.n) == (0.5, 0.4, 0.6, 2)
    assert by_image.values == (1.0, 2.0) and by_image.keys == (3, 7)
    by_cell = stored_score(_record([1.0], {"rows": ["1-2-3-4:0"]}))
    assert by_cell.keys == ("1-2-3-4:0",)
    assert stored_score(_record([1.0, 2.0], {"index": [3]})).keys is None  # keys that do not fit the values
    assert stored_score(_record([1.0], "not a dict")).details == {}
    na = stored_score(_record([], {"not_applicable": "no masks"}, mean=None))
    assert na.mean is None and na.na == "no masks" and na.values == ()


def test_a_malformed_stored_value_raises():
    with pytest.raises(ValueError):
        stored_score(_record(["x"], {}))


def _score(values, keys=None):
    return Score(float(np.mean(values)), None, None, len(values), values=tuple(values), keys=keys)


def test_aligned_pairs_by_key_in_the_first_scores_order():
    a = _score([1.0, 2.0, 3.0, 4.0], keys=(0, 1, 2, 3))
    b = _score([20.0, 40.0, 50.0], keys=(1, 3, 5))
    x, y = aligned(a, b)
    assert x.tolist() == [2.0, 4.0] and y.tolist() == [20.0, 40.0]


def test_aligned_pairs_keyless_scores_by_position_only_when_lengths_agree():
    x, y = aligned(_score([1.0, 2.0]), _score([3.0, 4.0]))
    assert x.tolist() == [1.0, 2.0] and y.tolist() == [3.0, 4.0]
    assert aligned(_score([1.0, 2.0]), _score([3.0])) is None
    assert aligned(_score([1.0, 2.0]), _score([3.0, 4.0], keys=(0, 1))) is None


def test_common_matrix_keeps_the_examples_every_model_has():
    scores = [
        _score([1.0, 2.0, 3.0], keys=(0, 1, 2)),
        _score([12.0, 11.0], keys=(2, 1)),
        _score([21.0, 22.0, 23.0], keys=(1, 2, 3)),
    ]
    assert common_matrix(scores).tolist() == [[2.0, 3.0], [11.0, 12.0], [21.0, 22.0]]


def test_common_matrix_pairs_keyless_values_by_position_only_when_allowed():
    keyless = [_score([1.0, 2.0]), _score([3.0, 4.0])]
    assert common_matrix(keyless).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert common_matrix(keyless, positional=False) is None  # e.g. GridPG composites differ between models
    assert common_matrix([_score([1.0, 2.0]), _score([3.0])]) is None
    assert common_matrix([_score([1.0, 2.0]), _score([3.0, 4.0], keys=(0, 1))]) is None
