"""The leaderboard's scatter plots: AA robust accuracy against each headline score, one point per model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.report import figures
from harness.report.board import Board
from harness.report.columns import label
from harness.report.escape import plot_text
from harness.report.values import normalised_by_run
from metrics.registry import FEATUREVIS_METHOD, HEADLINE, METRICS


def scatter_plot(board: Board, directory: Path) -> Path | None:
    """One figure per board (one panel per headline score with values, intervals as error bars), or None."""
    panels = scatter_panels(board)
    if not panels:
        return None
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{board.dataset}_{board.threat_model}_{board.eps_text}")
    title = plot_text(f"Robustness vs interpretability: {board.dataset}, {board.threat_model} {board.eps_text}", 120)
    return figures.scatter_grid(panels, directory / f"{slug}.png", ncols=4, title=title)


def scatter_panels(board: Board) -> list[dict[str, Any]]:
    """The panels of :func:`scatter_plot`, one per headline score some model has. A curve metric is plotted as its
    table column shows it: normalised between each model's floor and ceiling (the models with stored bounds), else
    raw."""
    panels = []
    for method, name in HEADLINE:
        points = []
        normalised = normalised_by_run(board.entries, name)
        for e in board.entries:
            score = normalised.get(e.run_id) if normalised else e.scores.get((method, name))
            if score is None or score.mean is None:
                continue
            lo, hi = e.robust_interval
            y_err = None if score.low is None else (score.low, score.high)
            points.append(
                {
                    "label": plot_text(e.model),
                    "x": 100 * e.robust_acc,
                    "x_err": (100 * lo, 100 * hi),
                    "y": score.mean,
                    "y_err": y_err,
                }
            )
        if points:
            spec = METRICS.get(name)
            source = "featurevis" if method == FEATUREVIS_METHOD else method
            panels.append(
                {
                    "points": points,
                    "x_label": "AA robust accuracy (%)",
                    "y_label": f"{spec.short} norm. ↑" if normalised else label(name),
                    "title": f"{spec.short} ({source})",
                }
            )
    return panels
