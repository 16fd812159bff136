"""The attack stage, parent side: validate each attacked chunk (harness.pipeline.validate) and verify it against the
parent's own data with the parent's own eps, re-classify its adversarial examples in a fresh worker, then commit it.

The fresh worker (:class:`Reclassifier`) loads the submission again in a new sandbox that cannot read the data
directory and never sees a clean image; it gets each chunk's adversarial examples in a shuffled order. A model
that remembers the clean images it was shown (and answers their label for anything near them) is caught: where
the fresh worker disagrees with the attacking one, the run is flagged (harness.attack.sanity.stateful_flags) and the
fresh worker's prediction is stored. Predictions that differ only by float rounding (the two logits within
``TIE_TOLERANCE`` of each other) keep the attacking worker's, so a deterministic model's numbers are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harness import store
from harness.attack.verify import verify_adversarial
from harness.config import ResolvedConfig, RunConfig
from harness.errors import HarnessError
from harness.pipeline import validate
from harness.pipeline.artifacts import FIGURE_ROWS, pack, unpack_all
from harness.pipeline.limits import Budgets, open_channel

TIE_TOLERANCE = 1e-4  # relative to 1 + the row's largest logit magnitude


@dataclass
class Reclassifier:
    """A fresh worker that re-classifies adversarial examples: opened on first use, closed by :meth:`close`."""

    config: RunConfig
    located: Any  # harness.pipeline.source.ModelSource
    metadata: dict[str, Any]
    budgets: Budgets
    num_classes: int
    seed: int
    channel: Any = None

    def logits(self, x_adv: np.ndarray, start: int, batch_size: int) -> np.ndarray:
        """The fresh worker's logits ``(n, K)`` for ``x_adv`` ``(n, C, H, W)``, sent in a seeded shuffled order."""
        if self.channel is None:
            self.channel = open_channel(self.config, self.located.readable, data=False)
            reply = self.channel.request({"op": "load", "config": self.config.to_json()}, budget=self.budgets.load)
            if validate.loaded(reply) != self.metadata:
                raise HarnessError(
                    "the submission reported different METADATA when loaded a second time",
                    "METADATA must not depend on when or where the submission is loaded",
                )
        n = len(x_adv)
        order = np.random.default_rng([self.seed, start]).permutation(n)
        reply = self.channel.request(
            {"op": "classify", "x": x_adv[order], "batch_size": batch_size},
            budget=self.budgets.classify(n),
            max_line=validate.max_line_classify(n, self.num_classes),
        )
        shuffled = validate.classified(reply, n, self.num_classes)
        logits = np.empty_like(shuffled)
        logits[order] = shuffled
        return logits

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()


def settle(adv_pred: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The stored predictions from the attacking worker's ``adv_pred`` and the fresh worker's ``logits``: the fresh
    worker's argmax, except where the attacking worker's class is within rounding of it (a tie). Returns
    (predictions, disagreements, ties).

    >>> settle(np.array([0, 1, 2]), np.array([[2.0, 1.0, 0.0], [1.0, 1.0 - 1e-7, 0.0], [5.0, 0.0, 0.0]]))
    (array([0, 1, 0]), 1, 1)
    """
    fresh = logits.argmax(1)
    top = logits.max(1)
    theirs = np.take_along_axis(logits, adv_pred[:, None], 1)[:, 0]
    tolerance = TIE_TOLERANCE * (1 + np.abs(logits).max(1))
    differ = fresh != adv_pred
    tie = differ & (top - theirs <= tolerance)
    return np.where(tie, adv_pred, fresh), int((differ & ~tie).sum()), int(tie.sum())


def store_chunk(
    sessions,
    run_id: str,
    m: dict[str, Any],
    x: torch.Tensor,
    y: torch.Tensor,
    resolved: ResolvedConfig,
    schema: validate.AttackSchema,
    reclassifier: Reclassifier,
) -> None:
    """Validate one attacked chunk against the parent's own data, re-classify it, then commit its rows."""
    chunk = schema.chunk(m)
    start, end, clean_pred = chunk.start, chunk.end, chunk.clean_pred
    x_adv = torch.as_tensor(chunk.x_adv)
    norms = verify_adversarial(x[start:end], x_adv, threat_model=resolved.threat_model, eps=resolved.eps)
    logits = reclassifier.logits(chunk.x_adv, start, resolved.batch_size)
    adv_pred, disagreements, ties = settle(chunk.adv_pred, logits)
    labels = y[start:end].numpy()
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        for i in range(end - start):
            clean_ok = bool(clean_pred[i] == labels[i])
            robust_ok = clean_ok and bool(adv_pred[i] == labels[i])
            s.add(
                store.ExampleRecord(
                    run_id=run_id,
                    idx=start + i,
                    label=int(labels[i]),
                    clean_pred=int(clean_pred[i]),
                    adv_pred=int(adv_pred[i]),
                    clean_correct=clean_ok,
                    robust_correct=robust_ok,
                    perturbation=float(norms[i]),
                )
            )
        _keep_for_figure(s, run_id, start, x_adv, clean_pred, adv_pred, labels)
        details = dict(run.details)
        chunks = dict(details.get("autoattack", {}).get("chunks", {}))
        chunks[str(start)] = {
            "n": end - start,
            "accuracy_after": chunk.accuracy_after,
            "warnings": chunk.warnings,
            "reclassified": {"disagreements": disagreements, "ties": ties},
        }
        details["autoattack"] = {**details.get("autoattack", {}), "chunks": chunks}
        run.details, run.heartbeat_at = details, store.utcnow()


def _keep_for_figure(
    s, run_id: str, start: int, x_adv: torch.Tensor, clean_pred: np.ndarray, adv_pred: np.ndarray, labels: np.ndarray
) -> None:
    """Keep FIGURE_ROWS examples for the adversarial-examples figure: successful attacks first, then by index."""
    row = s.get(store.ArtifactRecord, (run_id, "adversarial"))
    kept = unpack_all(row.data) if row is not None else None
    idx = np.arange(start, start + len(labels))
    success = (clean_pred == labels) & (adv_pred != labels)
    pool = {"idx": idx, "x_adv": x_adv.numpy(), "clean_pred": clean_pred, "adv_pred": adv_pred, "success": success}
    if kept is not None:
        pool = {key: np.concatenate([kept[key], pool[key]]) for key in pool}
    order = np.lexsort((pool["idx"], ~pool["success"].astype(bool)))[:FIGURE_ROWS]
    s.merge(
        store.ArtifactRecord(
            run_id=run_id, key="adversarial", data=pack(**{key: value[order] for key, value in pool.items()})
        )
    )
