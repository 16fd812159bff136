"""One board and its analysis (harness/report/board.py), from hand-built entries."""

from harness.report.board import Board, analysed_board
from harness.report.controls import BarCheck
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
    assert board.comparisons == [] and board.uncompared == [] and board.excluded == []
    bases = {"raw scores", "all images", "other output", "occlusion ceiling", "default baseline"}
    assert set(board.sensitivity) == bases and set(board.correlation_sensitivity) == {"raw scores", "occlusion ceiling"}


def test_a_score_is_marked_when_it_does_not_beat_its_bar_on_that_model():
    board = Board("d", "Linf", "0.1")
    board.controls = [
        BarCheck("a", EG, metric, "control_input", 0.9, 0.1, 0.05, 0.15, 0.01, beats=metric == "randomisation")
        for metric in ("randomisation", "gridpg")
    ]
    assert board.informative("a", EG, "randomisation") and not board.informative("a", EG, "gridpg")
    assert board.informative("b", EG, "gridpg")  # no bar checked


def test_the_accuracy_rule_leaves_a_model_that_did_not_train_out_of_every_test():
    ok = entry("std", {(EG, "randomisation"): score([0.5, 0.6], [0, 1])}, clean=0.9)
    bad = entry(
        "bad",
        {(EG, "randomisation"): score([0.4, 0.5], [0, 1])},
        clean=0.58,
        training="fgsm-rs",
        threat="Linf",
        eps=0.15,
    )
    board = analysed_board(("fashion-mnist", "Linf", "0.1"), [ok, bad], [])
    assert [i.model for i in board.excluded] == ["bad"] and "58.0%" in board.excluded[0].reason
    assert board.comparisons == [] and board.uncompared == []  # its recipe is out: nothing to compare


def test_detail_pairs_leave_reliability_to_its_own_section():
    scores = {
        (EG, "sparseness"): score([1.0]),
        ("reliability", "sparseness"): score([1.0]),
        ("saliency", "abpc"): score([1.0]),
    }
    board = Board("d", "Linf", "0.1", [entry("a", scores)])
    assert board.detail_pairs == [(EG, "sparseness"), ("saliency", "abpc")]
    assert board.reliable("sparseness") is None
