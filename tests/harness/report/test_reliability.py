"""MetaQuantus reliability read from the board's runs (harness/report/reliability.py)."""

from harness.report.reliability import RELIABILITY_METHOD, Reliability, reliability, reliable
from tests.harness.report.builders import entry, score


def _reliability(nr, ar):
    details = {"noise_resilience": nr, "adversary_reactivity": ar, "reliable": nr > 0.5 and ar > 0.5}
    return score([(nr + ar) / 2], details=details)


def test_reliability_scores_are_read_from_the_reliability_pseudo_method():
    a = entry("a", {(RELIABILITY_METHOD, "sparseness"): _reliability(0.9, 0.7), ("saliency", "sparseness"): score([1])})
    b = entry(
        "b", {(RELIABILITY_METHOD, "sparseness"): _reliability(0.9, 0.3), (RELIABILITY_METHOD, "abpc"): score([1])}
    )
    found = reliability([a, b])  # b's abpc score has no criteria: not a reliability result
    assert found == [
        Reliability("a", "sparseness", 0.8, 0.9, 0.7, True),
        Reliability("b", "sparseness", 0.6, 0.9, 0.3, False),
    ]
    assert reliable(found, "sparseness") is False  # unreliable on one model that measured it
    assert reliable(found[:1], "sparseness") is True
    assert reliable(found, "abpc") is None
