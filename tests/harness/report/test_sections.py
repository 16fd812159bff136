"""The board's "What the evidence shows" summary (harness/report/sections.py), from hand-built verdicts."""

from harness.report.board import Board
from harness.report.comparisons import Comparison
from harness.report.correlations import Correlation
from harness.report.sections import summary_section

EG = "expected_gradients"


def _comparison(metric: str, verdict: str) -> Comparison:
    return Comparison("fgsm", EG, metric, 0.1, 0.0, 0.2, verdict)


def _correlation(metric: str, verdict: str) -> Correlation:
    return Correlation(EG, metric, 11, 0.8, 0.01, 0.04, verdict)


def test_the_summary_puts_each_placement_of_faithfulness_beside_the_primary_verdicts():
    """Faithfulness shows raw scores and occlusion's ceiling beside the primary counts, recipe verdicts and
    correlations alike; a family without a floor and ceiling shows raw scores only; the direction follows the
    primary tests alone."""
    board = Board("fashion-mnist", "Linf", "0.1")
    board.comparisons = [_comparison("abpc", "inconclusive (adjusted p = 0.5)"), _comparison("gridpg", "yes")]
    board.sensitivity = {
        "raw scores": [_comparison("abpc", "no (adjusted p = 0.01)"), _comparison("gridpg", "yes")],
        "occlusion ceiling": [_comparison("abpc", "yes"), _comparison("gridpg", "yes")],
    }
    board.correlations = [_correlation("abpc_road", "inconclusive (adjusted p = 1)")]
    board.correlation_sensitivity = {
        "raw scores": [_correlation("abpc_road", "inconclusive (adjusted p = 1)")],
        "occlusion ceiling": [_correlation("abpc_road", "yes"), _correlation("deletion_relative", "yes")],
    }
    lines = summary_section(board).splitlines()
    faithfulness = next(line for line in lines if line.startswith("- **Faithfulness**"))
    assert faithfulness == (
        "- **Faithfulness**: recipe verdicts 0 for / 0 against / 1 inconclusive (on raw scores: 0 / 1 / 0; on "
        "occlusion ceiling: 1 / 0 / 0); across recipes 0 for / 0 against / 1 inconclusive (on raw scores: 0 / 0 / 1; "
        "on occlusion ceiling: 2 / 0 / 0); dose-response 0 for / 0 against / 0 inconclusive. No test establishes a "
        "difference."
    )
    localisation = next(line for line in lines if line.startswith("- **Localisation**"))
    assert "on raw scores: 1 / 0 / 0)" in localisation and "occlusion" not in localisation
    assert localisation.endswith("The evidence supports the claim here.")
