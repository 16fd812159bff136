"""One stored score: summary statistics of a metric's per-example values."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness import store
from metrics.stats import bootstrap_interval


def metric_record(
    run_id: str, method: str, metric: str, values: list[Any], details: dict[str, Any]
) -> store.MetricRecord:
    """One stored score: summary statistics of the per-example values (``details["interval"]``, where a score
    brings its own interval, e.g. FID's bootstrap over images, replaces the bootstrap of the mean)."""
    values = [float(v) for v in values]
    mean, std, low, high = summarise(values)
    if "interval" in details:
        low, high = details["interval"]
    return store.MetricRecord(
        run_id=run_id,
        method=method,
        metric=metric,
        mean=mean,
        std=std,
        n=len(values),
        ci_low=low,
        ci_high=high,
        values=values,
        details=details,
    )


def summarise(values: list[float]) -> tuple[float | None, float | None, float | None, float | None]:
    """Mean, sample std, and 95% bootstrap interval of the mean (None where undefined)."""
    if not values:
        return None, None, None, None
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=1)) if arr.size > 1 else None
    low, high = bootstrap_interval(arr)
    return float(arr.mean()), std, (None if np.isnan(low) else low), (None if np.isnan(high) else high)
