"""Runs written straight into a database for the report's tests (no evaluation): a model, a completed run with
headline scores and its controls' scores on the same images, flags, AutoAttack's log, timings and provenance."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from harness import store
from metrics.registry import HEADLINE
from tests.harness.report.builders import example_rows


def add_run(
    s,
    *,
    name: str,
    run_id: str,
    values: list[float],
    clean: float = 0.9,
    robust: float = 0.5,
    training: str = "standard",
    attack: str = "standard",
    n: int = 1000,
    day: int = 0,
    flags: list[dict[str, str]] | None = None,
    controls: dict[str, list[float]] | None = None,
    details: dict[str, Any] | None = None,
    timings: dict[str, float] | None = None,
    dataset: str = "fashion-mnist",
    eps: str = "0.1",
) -> store.RunRecord:
    """A completed run of model ``name`` whose every headline score has the per-image ``values`` (image indices
    0..k-1), and, per control in ``controls``, that control's values for the attribution headline metrics."""
    model = store.get_or_create_model(
        s,
        name=name,
        source=f"{name}.py",
        file_sha256=(name.encode().hex() * 64)[:64],
        weights_sha256=None,
        info={"training": {"method": training}, "architecture": "gap-cnn"},
    )
    run = store.RunRecord(
        id=run_id,
        model_id=model.id,
        dataset=dataset,
        threat_model="Linf",
        eps=float(eps),
        eps_text=eps,
        n_examples=n,
        seed=0,
        attack=attack,
        config_key=run_id,
        status=store.COMPLETE,
        clean_acc=clean,
        robust_acc=robust,
        config={"device": "cpu", "n_examples": n, "attack": attack},
        provenance={"versions": {"torch": "2.14.1", "pyautoattack": "0.2.0"}, "git": {"commit": "abc123"}},
        flags=flags or [],
        details=details or {"autoattack": {"accuracy_after": {"clean": clean, "apgd-ce": robust}, "warnings": []}},
        timings=timings or {"attack": 12.0, "explain": 30.0},
        created_at=datetime(2026, 1, 1) + timedelta(days=day),
        examples=example_rows(n, clean, robust),  # the board shows a run whose numbers are its rows'
    )
    for row in run.examples:
        row.perturbation = float(eps)  # on the eps-ball's surface, as AutoAttack's examples are
    s.add(run)
    index = list(range(len(values)))
    for method, metric in HEADLINE:
        _score(s, run_id, method, metric, values, index)
    for control, control_values in (controls or {}).items():
        for method, metric in HEADLINE:
            if method != "featurevis":
                _score(s, run_id, control, metric, control_values, index)
    return run


def _score(s, run_id: str, method: str, metric: str, values: list[float], index: list[int]) -> None:
    s.add(
        store.MetricRecord(
            run_id=run_id,
            method=method,
            metric=metric,
            mean=sum(values) / len(values),
            std=0.05,
            n=len(values),
            ci_low=min(values),
            ci_high=max(values),
            values=values,
            details={"index": index},
        )
    )
