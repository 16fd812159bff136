"""The board's scatter plot panels (harness/report/plots.py): each score plotted as its table column shows it."""

import pytest

from harness.report.board import Board
from harness.report.plots import scatter_panels
from harness.report.values import own_normalised
from tests.harness.report.builders import entry, score

EG = "expected_gradients"


def test_a_curve_metric_is_plotted_normalised_and_other_scores_raw():
    keys = [0, 1]

    def scores(method, ceiling, sparseness):
        return {
            (EG, "abpc_logit"): score(method, keys),
            ("bound_floor", "abpc_logit"): score([0.0, 0.0], keys),
            ("bound_ceiling", "abpc_logit"): score(ceiling, keys),
            (EG, "abpc"): score([0.9, 0.9], keys),  # the raw probability score: not what the column shows
            (EG, "sparseness"): score(sparseness, keys),
        }

    a = entry("a", scores([0.3, 0.5], [0.6, 1.0], [0.5, 0.7]), robust=0.2)
    b = entry("b", scores([0.2, 0.2], [0.4, 0.4], [0.8, 0.8]), robust=0.6)
    board = Board("fashion-mnist", "Linf", "0.1", [a, b])
    panels = {p["title"]: p for p in scatter_panels(board)}
    abpc = panels[f"ABPC ({EG})"]
    assert abpc["y_label"] == "ABPC norm. ↑"
    assert [p["y"] for p in abpc["points"]] == pytest.approx([0.4 / 0.8, 0.5])
    assert [p["y"] for p in abpc["points"]] == [own_normalised(e, "abpc").mean for e in (a, b)]
    assert [p["x"] for p in abpc["points"]] == pytest.approx([20.0, 60.0])
    gini = next(p for title, p in panels.items() if title.startswith("Gini"))
    assert [p["y"] for p in gini["points"]] == pytest.approx([0.6, 0.8]) and "norm." not in gini["y_label"]
