"""The leaderboard's analysis as typed values: one :class:`~harness.report.board.Board` per data set x threat model
x eps, from the completed runs and the imported reported entries. Markdown (harness.report.markdown), HTML and plots
only render these values; tests assert on them.

Statistics (README, "Robustness vs interpretability"): every comparison between models on the same images is
paired (per-image scores aligned by image index, GridPG by composite cell: harness.report.scores); recipes with
several training seeds are compared with a mixed-model t interval over seeds and images (harness.report.comparisons);
rank correlations across models use permutation tests (exact up to 8 models: harness.report.correlations,
harness.report.dose); p-values of one board's family of comparisons (and, separately, of its correlations and of its
dose-response tests) are Holm-adjusted, and verdicts come from the adjusted p-values only
(harness.report.verdicts).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from harness.core.threat import parse_eps
from harness.report.board import Board, analysed_board
from harness.report.entries import BOARD_KEYS, runs_frame, select_rows, to_entries
from harness.store.robustbench import eps_section, is_corruptions, rank_key, reported_entries

__all__ = ["Board", "analyse", "build_boards", "place_reported"]

Section = tuple[str, str, str]  # (data set, threat model, eps text)


def analyse(s: Session) -> list[Board]:
    """Every board of the leaderboard, from the completed runs and the imported reported entries."""
    return build_boards(runs_frame(s), reported_entries(s))


def build_boards(frame: pd.DataFrame, reported: list[dict[str, Any]]) -> list[Board]:
    """Boards in order (measured settings first, then settings only reported entries have, sorted)."""
    measured = [] if not len(frame) else list(frame[BOARD_KEYS].drop_duplicates().itertuples(index=False, name=None))
    placed = place_reported(reported, measured)
    boards: list[Board] = []
    if len(frame):
        for key, table in select_rows(frame).groupby(BOARD_KEYS, sort=False):
            mine = [r for r in placed if r["section"] == key]
            boards.append(analysed_board(key, to_entries(table, {r["model_id"]: r for r in mine}), mine))
    known = {b.key for b in boards}
    extra = sorted({r["section"] for r in placed} - known, key=_section_order)
    boards += [Board(*key) for key in extra]  # reported-only settings still get a section
    for board in boards:
        board.reported = sorted((r for r in placed if r["section"] == board.key), key=rank_key)
        if not board.entries:
            board.reported_only = list(board.reported)
    return boards


def place_reported(reported: list[dict[str, Any]], measured: list[Section]) -> list[dict[str, Any]]:
    """Each reported entry with its ``section`` (data set, threat model, eps text) and ``eps_note``.

    Corruptions entries share one section per data set (eps ""). An eps equal to a measured or reported one joins
    it; a decimal within rounding of a k/255 fraction joins that fraction's section with a note (RobustBench lists
    0.031 under 8/255); see harness.store.robustbench.eps_section.
    """
    texts: dict[tuple[str, str], list[str]] = {}
    for dataset, threat, eps_text in measured:
        texts.setdefault((dataset, threat), []).append(eps_text)
    for rep in reported:
        if not is_corruptions(rep):
            texts.setdefault((rep["dataset"], rep["threat_model"]), []).append(str(rep["eps"]).strip())
    measured_texts = {m[2] for m in measured}
    out = []
    for rep in reported:
        if is_corruptions(rep):
            section, note = "", None
        else:
            group = texts[(rep["dataset"], rep["threat_model"])]
            candidates = [t for t in dict.fromkeys(group) if "/" in t or t in measured_texts]
            section, note = eps_section(rep["eps"], candidates)
        out.append({**rep, "section": (rep["dataset"], rep["threat_model"], section), "eps_note": note})
    return out


def _section_order(key: Section) -> tuple[str, int, float]:
    threat_order = {"Linf": 0, "L2": 1, "corruptions": 2}
    dataset, threat, eps_text = key
    return dataset, threat_order.get(threat, 3), parse_eps(eps_text)[0] if eps_text else 0.0
