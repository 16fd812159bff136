"""The leaderboard's tables described once (harness/report/columns.py): which columns a table has, each cell from
its row, the sort order, and both formats writing exactly the described columns."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.report import columns, html, markdown
from harness.report.board import Board
from harness.report.cells import Link, Missing, NoteMark, Number, Text
from harness.report.columns import MAIN, Table, layout, reported_columns, reported_rows, score_value
from harness.report.controls import BarCheck
from harness.report.notes import CONTROL_NOTE, na_note
from harness.report.scores import Score
from metrics.registry import HEADLINE, METRICS
from tests.harness.report.builders import entry, score

EG = "expected_gradients"
HEADLINE_LABELS = [  # curve metrics show their normalised score
    f"{METRICS.get(metric).short} norm. ↑" if METRICS.get(metric).normalisable else columns.label(metric)
    for _, metric in HEADLINE
]


def _board(*entries, reported=()):
    return Board("fashion-mnist", "Linf", "0.1", list(entries), reported=list(reported))


def test_the_main_table_has_the_reported_and_figures_columns_only_when_they_apply():
    board = _board(entry("a"))
    shown, _ = layout(MAIN, columns.main_rows(board), Table(board, figures=False))
    assert [c.header for c in shown] == [
        "Rank", "Model", "Clean acc (%)", "AA robust acc (%) [95% CI]", "n", *HEADLINE_LABELS,
        "Attack", "Training", "Date", "Run",
    ]  # fmt: skip
    board = _board(entry("a"), reported=[{"model_id": "x"}])
    shown, _ = layout(MAIN, columns.main_rows(board), Table(board))
    assert [c.header for c in shown][5] == "Reported clean / robust (%)" and shown[-1].header == "Figures"
    assert [c.header for c in shown if c.descending] == [
        "Clean acc (%)",
        "AA robust acc (%) [95% CI]",
        "n",
        "Reported clean / robust (%)",
    ]


def test_main_cells_from_an_entry():
    scores = {
        (EG, "abpc"): score([0.25, 0.5], [0, 1]),
        (EG, "abpc_logit"): score([0.3, 0.5], [0, 1]),
        ("bound_floor", "abpc_logit"): score([0.0, 0.1], [0, 1]),
        ("bound_ceiling", "abpc_logit"): score([0.6, 0.9], [0, 1]),
        (EG, "abpc_road"): score([0.2, 0.4], [0, 1]),
        (EG, "gridpg"): score([0.25, 0.5], [0, 1]),
    }
    e = entry("a", scores, robust=0.7)
    reported = {"model_id": "a", "clean_acc": "91.5", "autoattack_acc": "60.25"}
    e = replace(e, flags=({"code": "c", "message": "m"},), reported=reported)
    board = _board(e, reported=[e.reported])
    shown, (row,) = layout(MAIN, columns.main_rows(board), Table(board))
    cells = dict(zip([c.header for c in shown], row, strict=True))
    assert cells["Rank"] == Number("1", 1)
    assert cells["Model"].value == "a" and cells["Model"].sort == "a" and cells["Model"].marks[0].code == "c"
    assert cells["AA robust acc (%) [95% CI]"] == Number("70.0 [60.4, 78.1]", 70.0)  # Wilson, 70 of 100
    assert cells["Reported clean / robust (%)"] == Number("91.50 / 60.25", 60.25)
    # a curve metric's column: its normalised score, (0.3 + 0.4) / 2 / ((0.6 + 0.8) / 2), on the logit it explains
    assert cells["ABPC norm. ↑"].shown == "0.500" and cells["ABPC norm. ↑"].sort == pytest.approx(0.5)
    # no floor or ceiling stored (a run before them): the raw probability-scored score, marked raw
    raw = cells["ABPC (ROAD) norm. ↑"]
    assert raw.shown == "0.300" and raw.marks == (NoteMark(columns.RAW_NOTE, "raw"),)
    assert cells["GridPG ↑"] == Number("0.375", 0.375, (), "95% interval [0.250, 0.500], n=2")
    assert cells["Random. ρ ↓"] == Missing()
    assert cells["Date"] == Text("2026-01-01") and cells["Run"].value == "run-a"


def test_a_headline_score_that_does_not_beat_its_controls_is_marked():
    e = entry(
        "a", {(EG, "gridpg"): score([0.2, 0.4], [0, 1]), (EG, "sparseness"): Score(None, None, None, 0, na="why")}
    )
    board = _board(e)
    board.controls = [BarCheck("a", EG, "gridpg", "control_input", 0.3, 0.0, -0.1, 0.1, 0.5, beats=False)]
    shown, (row,) = layout(MAIN, columns.main_rows(board), Table(board))
    cells = dict(zip([c.header for c in shown], row, strict=True))
    assert cells["GridPG ↑"].marks == (NoteMark(CONTROL_NOTE, "†"),)
    assert cells["Gini ↑"] == Text("n/a", sort="", marks=(NoteMark(na_note("why")),))


def test_score_value_shows_the_interval_in_detail_tables():
    s = score([0.2, 0.4], [0, 1])
    assert score_value(s, interval=True).shown == "0.300 [0.200, 0.400]"
    assert score_value(Score(0.3, None, None, 2), interval=True) == Number("0.300", 0.3, (), "")
    assert score_value(None, interval=True) == Missing()


def test_reported_columns_follow_robustbench():
    reps = [
        {"model_id": "x", "name": "A  paper", "link": "https://a.org", "clean_acc": "90.0", "autoattack_acc": "50.0",
         "external": "49.0", "unreliable": True, "additional_data": False, "architecture": "WRN", "venue": "ICLR"},
        {"model_id": "y", "name": "B", "link": "javascript:x", "clean_acc": "80.0", "autoattack_acc": "55.0"},
    ]  # fmt: skip
    board = _board()
    shown, rows = layout(reported_columns(reps), reported_rows(reps), Table(board))
    assert [(c.header, c.descending) for c in shown] == [
        ("Rank", False), ("Model", False), ("Paper", False), ("Clean acc (%)", True), ("AA robust acc (%)", True),
        ("Best known robust acc (%)", True), ("AA eval. potentially unreliable", True), ("Extra data", False),
        ("Architecture", False), ("Venue", False),
    ]  # fmt: skip
    y, x = rows  # ranked by best known accuracy: y 55.0, x 49.0 (external)
    assert y[1].value == "y" and y[2] == Text("B", limit=1000, collapse=True)  # not an http(s) link
    assert x[2] == Link("A paper", "https://a.org") and x[5] == Number("49.00", 49.0)
    assert [x[6].value, x[7].value, y[6].value, y[7].value] == ["yes", "no", "unknown", "—"]


def test_corruption_boards_show_the_corruption_columns_they_have():
    reps = [{"model_id": "c", "threat_model": "corruptions", "clean_acc": "93.1", "corruptions_acc": "84.1",
             "corruptions_mce": "20.0"}]  # fmt: skip
    shown = reported_columns(reps)
    assert [(c.header, c.descending) for c in shown][3:6] == [
        ("Clean acc (%)", True),
        ("Robust acc, common corruptions (%)", True),
        ("mCE (%)", False),  # an error: lowest first
    ]


def test_detail_tables_have_a_row_per_method_and_the_registrys_column_order():
    scores = {(EG, "sparseness"): score([0.5]), (EG, "abpc"): score([0.1]), ("saliency", "sparseness"): score([0.2])}
    scores[("featurevis", "generation_fid")] = score([100.0])
    board = _board(entry("a", scores), entry("b", {("saliency", "abpc"): score([0.3])}))
    names = columns.detail_metrics(board, featurevis=False)
    assert names == ["abpc", "sparseness"]
    rows = columns.detail_rows(board, names, featurevis=False)
    assert [(d.entry.model, d.method) for d in rows] == [("a", EG), ("a", "saliency"), ("b", "saliency")]
    shown, values = layout(columns.detail_columns(names), rows, Table(board))
    assert [c.header for c in shown] == ["Model", "Method", "ABPC ↑", "Gini ↑"]
    assert values[1][2] == Missing() and values[1][3].shown == "0.200 [0.200, 0.200]"
    assert columns.detail_metrics(board, featurevis=True) == ["generation_fid"]


def test_both_formats_write_exactly_the_described_main_columns(tmp_path):
    board = _board(entry("a"), reported=[{"model_id": "x", "clean_acc": "1.0"}])
    headers = [c.header for c in MAIN]
    md = markdown.render([board], markdown.Files(out=tmp_path / "lb.md", root=tmp_path))
    assert "| " + " | ".join(headers) + " |" in md
    html.write_site([board], tmp_path / "site")
    page = (tmp_path / "site" / "fashion-mnist_Linf.html").read_text()
    written = page.split("<thead><tr>")[1].split("</tr></thead>")[0]
    assert written.count("<th ") == len(headers) and all(f">{h}</th>" in written for h in headers)
