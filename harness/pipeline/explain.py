"""The explain stage, parent side: ask the worker for the missing scores and store each as it arrives."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from harness import store
from harness.pipeline import validate
from harness.pipeline.artifacts import pack, unpack_attributions
from harness.pipeline.scores import metric_record
from harness.worker.protocol import ExplainRequest
from metrics.suite import SuiteConfig


def explain_and_score(sessions, channel, run_id: str, suite: SuiteConfig, x, budgets) -> None:
    """Ask the worker for the missing scores; store attributions and each score as it arrives, once it passed its
    schema (harness.pipeline.validate.ExplainSchema: only what was asked for, shapes, bounded details)."""
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        clean_pred = np.array([e.clean_pred for e in run.examples], dtype=np.int64)
        done = [[m.method, m.metric] for m in run.metrics]
        cached = {
            a.key.split(":", 1)[1]: unpack_attributions(a.data)
            for a in run.artifacts
            if a.key.startswith("attributions:")
        }

    schema = validate.ExplainSchema(suite, {tuple(pair) for pair in done}, set(cached), tuple(x.shape[1:]))

    def on_message(m: dict[str, Any]) -> None:
        m = schema.message(m)
        with store.transaction(sessions) as s:
            run = s.get(store.RunRecord, run_id)
            if m["op"] == "attributions":
                s.merge(
                    store.ArtifactRecord(
                        run_id=run_id, key=f"attributions:{m['method']}", data=pack(main=m["main"], grid=m["grid"])
                    )
                )
            elif m["op"] == "score":
                s.add(metric_record(run_id, str(m["method"]), str(m["metric"]), m["values"], m["details"]))
            run.heartbeat_at = store.utcnow()

    channel.request(
        ExplainRequest(op="explain", suite=asdict(suite), clean_pred=clean_pred, done=done, cached=cached),
        on_message=on_message,
        budget=budgets.explain(suite.n_explain, suite),
        max_line=validate.max_line_explain(suite, tuple(x.shape[1:])),
    )
    schema.finish()
