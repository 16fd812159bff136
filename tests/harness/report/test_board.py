"""One board and its analysis (harness/report/board.py), from hand-built entries."""

from harness.report.board import Board, analysed_board
from harness.report.controls import ControlCheck
from tests.harness.report.builders import entry, score

EG = "expected_gradients"


def test_an_analysed_board_lists_reported_entries_of_models_not_measured_here():
    measured = [entry("a", {(EG, "sparseness"): score([0.5, 0.6], [0, 1])}), entry("b")]
    reported = [
        {"model_id": "a", "clean_acc": "90.0", "autoattack_acc": "50.0"},
        {"model_id": "y", "clean_acc": "80.0", "autoattack_acc": "40.0"},
        {"model_id": "x", "clean_acc": "85.0", "autoattack_acc": "60.0"},
    ]
    board = analysed_board(("fashion-mnist", "Linf", "0.1"), measured, reported)
    assert board.key == ("fashion-mnist", "Linf", "0.1") and board.entries == measured
    assert [r["model_id"] for r in board.reported_only] == ["x", "y"]  # RobustBench's order: best known first
    assert [r.label for r in board.recipes] == ["standard cnn"]
    assert board.standard_model is None and board.comparisons == [] and board.uncompared == []


def test_a_score_is_informative_when_it_beats_the_controls_its_metric_is_held_to():
    board = Board("d", "Linf", "0.1")
    board.controls = [
        ControlCheck("a", EG, metric, control, 0.1, 0.05, 0.15, beats=control == "control_input", matches=False)
        for metric in ("randomisation", "sparseness")
        for control in ("control_random", "control_input")
    ]
    assert board.informative("a", EG, "randomisation") and not board.informative("a", EG, "sparseness")
    assert board.informative("b", EG, "sparseness")  # no control scored


def test_detail_pairs_leave_reliability_to_its_own_section():
    scores = {
        (EG, "sparseness"): score([1.0]),
        ("reliability", "sparseness"): score([1.0]),
        ("saliency", "abpc"): score([1.0]),
    }
    board = Board("d", "Linf", "0.1", [entry("a", scores)])
    assert board.detail_pairs == [(EG, "sparseness"), ("saliency", "abpc")]
    assert board.reliable("sparseness") is None
