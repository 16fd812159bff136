"""Numbers as a run's output words them, shared by the run's feedback (harness.pipeline.feedback, .estimate) and
its summary (harness.report.summary): durations, estimated ranges and AutoAttack's own log."""

from __future__ import annotations

from collections.abc import Mapping

# AutoAttack's names for its sub-attacks, as its log writes them ("robust accuracy after APGD-CE: ...")
_LOG_NAMES = {"apgd-ce": "APGD-CE", "apgd-t": "APGD-T", "fab-t": "FAB-T", "fab": "FAB", "square": "SQUARE"}


def duration(seconds: float) -> str:
    """``45 s``, ``2.5 min``, ``1.2 h``.

    >>> duration(44.6), duration(150), duration(6000)
    ('45 s', '2.5 min', '1.7 h')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def span(low: float, high: float) -> str:
    """One duration, or a range when the ends differ by more than a tenth.

    >>> span(30, 31), span(30, 200)
    ('30 s', '30 s to 3.3 min')
    """
    if high <= 1.1 * low:
        return duration((low + high) / 2)
    return f"{duration(low)} to {duration(high)}"


def log_name(attack: str) -> str:
    """A sub-attack as AutoAttack's log names it (``apgd-dlr`` -> ``APGD-DLR``)."""
    return _LOG_NAMES.get(attack, attack.upper())


def autoattack_log(accuracy_after: Mapping[str, float]) -> str:
    """A chunk's (or the run's) AutoAttack log in AutoAttack's words: ``initial accuracy: 92.00%, robust accuracy
    after APGD-CE: 10.00%, after APGD-T: ...``.

    >>> autoattack_log({"clean": 0.92, "apgd-ce": 0.1, "apgd-t": 0.08})
    'initial accuracy: 92.00%, robust accuracy after APGD-CE: 10.00%, after APGD-T: 8.00%'
    """
    parts = []
    if "clean" in accuracy_after:
        parts.append(f"initial accuracy: {100 * accuracy_after['clean']:.2f}%")
    after = [(k, v) for k, v in accuracy_after.items() if k != "clean"]
    for i, (attack, value) in enumerate(after):
        lead = "robust accuracy after " if i == 0 else "after "
        parts.append(f"{lead}{log_name(attack)}: {100 * value:.2f}%")
    return ", ".join(parts) or "no AutoAttack log (no point was attacked)"
