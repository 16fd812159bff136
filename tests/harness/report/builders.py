"""Hand-built board values for the report's unit tests: entries with per-image scores."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from harness import store
from harness.report.entries import Entry
from harness.report.scores import Score


def example_rows(n: int, clean_acc: float, robust_acc: float) -> list[store.ExampleRecord]:
    """``n`` per-example rows whose accuracies are ``clean_acc`` and ``robust_acc`` (the board shows a run only when
    its numbers are those of its rows: harness.store.verify)."""
    clean, robust = round(clean_acc * n), round(robust_acc * n)
    return [
        store.ExampleRecord(
            idx=i,
            label=1,
            clean_pred=1 if i < clean else 2,
            adv_pred=1 if i < robust else 3,
            clean_correct=i < clean,
            robust_correct=i < robust,
            perturbation=0.1,
        )
        for i in range(n)
    ]


def score(values, keys=None, *, low=None, high=None, details=None) -> Score:
    """A score of per-example ``values`` (keys: image indices; the values' range as its interval unless given)."""
    values = [float(v) for v in values]
    return Score(
        float(np.mean(values)),
        min(values) if low is None else low,
        max(values) if high is None else high,
        len(values),
        values=tuple(values),
        keys=None if keys is None else tuple(keys),
        details=details or {},
    )


def entry(
    model,
    scores=None,
    *,
    training="standard",
    robust=0.5,
    eps=None,
    architecture="cnn",
    threat="",
    epochs=3,
    recipe=None,
    clean=0.9,
    correct=None,
    output="logit",
    seed=None,
):
    """One model's entry; its recipe label is ``training threat eps architecture`` unless given."""
    label = " ".join(str(p) for p in (training, threat, eps if eps is not None else "", architecture) if p)
    return Entry(
        run_id=f"run-{model}",
        model=model,
        n=100,
        attack="standard",
        clean_acc=clean,
        robust_acc=robust,
        training=training,
        created_at=datetime(2026, 1, 1),
        flags=(),
        scores=scores or {},
        recipe=label if recipe is None else recipe,
        eps_trained=eps,
        architecture=architecture,
        threat_trained=threat,
        epochs=epochs,
        clean_correct=None if correct is None else frozenset(correct),
        explained_output=output,
        seed=seed,
    )
