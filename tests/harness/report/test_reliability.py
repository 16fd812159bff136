"""MetaQuantus reliability read from the board's runs (harness/report/reliability.py): each verdict recomputed from
the stored criteria and kept-image counts against the noise metric's null, never from a stored flag."""

from harness.report.reliability import RELIABILITY_METHOD, reliability, reliable
from metrics.suite_reliability import stored_verdict
from tests.harness.report.builders import entry, score


def _details(criterion, *, counts=True, flag=True):
    """A reliability score's details with all four criteria equal to ``criterion`` (16 images kept everywhere)."""
    details = {key: criterion for key in ("iac_nr", "iac_ar", "iec_nr", "iec_ar")}
    details.update(methods=["expected_gradients", "integrated_gradients"], settings={"n_images": 16}, reliable=flag)
    if counts:
        kept = [[16] * 5, [16] * 5]
        details["kept_counts"] = {test: {"nr": kept, "ar": kept} for test in ("model", "input")}
    return details


def test_verdicts_are_recomputed_from_the_criteria_and_never_read_from_the_stored_flag():
    good, poor = _details(0.95, flag=False), _details(0.5, flag=True)  # the stored flags lie
    a = entry("a", {(RELIABILITY_METHOD, "abpc"): score([0.95], details=good), ("saliency", "abpc"): score([1])})
    b = entry("b", {(RELIABILITY_METHOD, "abpc"): score([0.5], details=poor), (RELIABILITY_METHOD, "x"): score([1])})
    found = reliability([a, b])  # b's second score has no criteria: not a reliability result
    assert [(r.model, r.status) for r in found] == [
        ("a", stored_verdict("abpc", good).status),
        ("b", stored_verdict("abpc", poor).status),
    ]
    assert [r.status for r in found] == ["reliable", "not reliable"]
    assert found[0].thresholds == stored_verdict("abpc", good).thresholds
    assert reliable(found, "abpc") is False and reliable(found[:1], "abpc") is True


def test_a_score_measured_before_the_noise_threshold_is_not_assessed_and_never_counts():
    old = entry("a", {(RELIABILITY_METHOD, "abpc"): score([0.95], details=_details(0.95, counts=False))})
    (r,) = reliability([old])
    assert r.status == "not assessed" and "before the noise threshold" in r.reason and not r.reliable
    assert reliable([r], "abpc") is None
