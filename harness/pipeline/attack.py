"""The attack stage, parent side: validate each attacked chunk (harness.pipeline.validate), verify it against the
parent's own data with the parent's own eps, commit it; then check that the model is stateless.

A model that remembers the clean images it was shown (and answers their label for anything near them) looks
robust to any attack run in the process that showed them. So a **fresh worker** (:class:`Reclassifier`) loads the
submission again in a new sandbox that cannot read the data directory and is never sent a clean image:

- each chunk's adversarial examples that differ from their clean image are re-classified there (in a shuffled
  order) as they arrive;
- after the attack, :func:`probe_chunks` sends probe points of each example's eps-ball to the attacking worker and
  to the fresh one: ``PROBES`` random ones (seeded: corners of the Linf ball, or points of the L2 sphere, clipped to
  [0, 1]), and one step of a gradient attack that the fresh worker computes from the first of them, an image it
  sees first (the step lands far enough from it that a model which remembers images does not recognise it).

Where the two disagree the run is flagged (harness.attack.sanity.stateful_flags) and the fresh worker's answer is
stored (an example whose probe it misclassifies is not robust). Predictions that differ only by float rounding (the
two logits within ``TIE_TOLERANCE``) keep the attacking worker's, so a deterministic model's numbers are unchanged.
A resumed run probes the chunks it has not probed yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import store
from harness.attack.verify import verify_adversarial
from harness.config import ResolvedConfig
from harness.errors import HarnessError
from harness.pipeline import validate
from harness.pipeline.artifacts import FIGURE_ROWS, pack, unpack_all
from harness.pipeline.budgets import PROBES, Budgets
from harness.pipeline.channels import WorkerLimits, open_channel
from harness.pipeline.plan import RunPlan
from harness.worker.protocol import PointsRequest, WorkerConfig, load_request

TIE_TOLERANCE = 1e-4  # relative to 1 + the row's largest logit magnitude


@dataclass
class Reclassifier:
    """A fresh worker that classifies points it is sent: opened on first use, closed by :meth:`close`. It is told
    ``worker`` (how to load the model) and may read ``readable`` (the model's directory) only: never the data."""

    worker: WorkerConfig
    limits: WorkerLimits
    readable: Path
    metadata: Mapping[str, Any]  # what the attacking worker reported: the fresh one must report the same
    budgets: Budgets
    num_classes: int
    seed: int
    channel: Any = None

    @classmethod
    def of(cls, plan: RunPlan) -> Reclassifier:
        return cls(
            plan.worker(),
            plan.limits,
            plan.source.readable,
            plan.metadata,
            plan.budgets,
            plan.dataset.num_classes,
            plan.resolved.seed,
        )

    def logits(self, points: np.ndarray, key: int, batch_size: int) -> np.ndarray:
        """The fresh worker's logits ``(n, K)`` for ``points`` ``(n, C, H, W)``, sent in a seeded shuffled order."""
        self._open()
        order = np.random.default_rng([self.seed, key]).permutation(len(points))
        shuffled = classify(self.channel, points[order], batch_size, self.num_classes, self.budgets)
        logits = np.empty_like(shuffled)
        logits[order] = shuffled
        return logits

    def _open(self) -> None:
        if self.channel is None:
            self.channel = open_channel(self.limits, [self.readable])
            reply = self.channel.request(load_request(self.worker), budget=self.budgets.load)
            if validate.loaded(reply) != self.metadata:
                raise HarnessError(
                    "the submission reported different METADATA when loaded a second time",
                    "METADATA must not depend on when or where the submission is loaded",
                )

    def signs(self, points: np.ndarray, key: int, batch_size: int) -> np.ndarray:
        """The fresh worker's input-gradient signs at ``points`` (cross-entropy of its own prediction), shuffled."""
        self._open()
        order = np.random.default_rng([self.seed, key]).permutation(len(points))
        reply = self.channel.request(
            PointsRequest(op="signs", x=points[order], batch_size=batch_size),
            budget=self.budgets.classify(len(points)),
            max_line=validate.max_line_signs(points.shape),
        )
        shuffled = validate.signed(reply, points.shape)
        signs = np.empty_like(shuffled)
        signs[order] = shuffled
        return signs

    def close(self) -> None:
        if self.channel is not None:
            self.channel, channel = None, self.channel
            channel.close()


def classify(channel, points: np.ndarray, batch_size: int, num_classes: int, budgets: Budgets) -> np.ndarray:
    """A worker's logits ``(n, K)`` for ``points``, validated."""
    reply = channel.request(
        PointsRequest(op="classify", x=points, batch_size=batch_size),
        budget=budgets.classify(len(points)),
        max_line=validate.max_line_classify(len(points), num_classes),
    )
    return validate.classified(reply, len(points), num_classes)


def settle(ours: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The stored predictions from the attacking worker's predictions ``ours`` and the fresh worker's ``logits``:
    the fresh worker's argmax, except where the attacking worker's class is within rounding of it (a tie).
    Returns (predictions, disagreement mask, ties).

    >>> settle(np.array([0, 1, 2]), np.array([[2.0, 1.0, 0.0], [1.0, 1.0 - 1e-7, 0.0], [5.0, 0.0, 0.0]]))
    (array([0, 1, 0]), array([False, False,  True]), 1)
    """
    fresh = logits.argmax(1)
    theirs = np.take_along_axis(logits, ours[:, None], 1)[:, 0]
    tolerance = TIE_TOLERANCE * (1 + np.abs(logits).max(1))
    differ = fresh != ours
    tie = differ & (logits.max(1) - theirs <= tolerance)
    return np.where(tie, ours, fresh), differ & ~tie, int(tie.sum())


def store_chunk(
    sessions,
    run_id: str,
    m: dict[str, Any],
    x: torch.Tensor,
    y: torch.Tensor,
    resolved: ResolvedConfig,
    schema: validate.AttackSchema,
    reclassifier: Reclassifier,
) -> validate.Chunk:
    """Validate one attacked chunk against the parent's own data, re-classify it, then commit its rows; returns the
    validated chunk."""
    chunk = schema.chunk(m)
    start, end, clean_pred, adv_pred = chunk.start, chunk.end, chunk.clean_pred, chunk.adv_pred
    x_adv = torch.as_tensor(chunk.x_adv)
    norms = verify_adversarial(x[start:end], x_adv, threat_model=resolved.threat_model, eps=resolved.eps)
    moved = (x_adv != x[start:end]).flatten(1).any(1).numpy()  # the fresh worker never sees a clean image
    disagreements, ties = 0, 0
    if moved.any():
        logits = reclassifier.logits(chunk.x_adv[moved], start, resolved.batch_size)
        settled, differ, ties = settle(adv_pred[moved], logits)
        adv_pred, disagreements = adv_pred.copy(), int(differ.sum())
        adv_pred[moved] = settled
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
            "reclassified": {"points": int(moved.sum()), "disagreements": disagreements, "ties": ties},
        }
        details["autoattack"] = {**details.get("autoattack", {}), "chunks": chunks}
        run.details, run.heartbeat_at = details, store.utcnow()
    return chunk


def probe_points(x: torch.Tensor, *, threat_model: str, eps: float, seed: int, key: int) -> np.ndarray:
    """``PROBES`` points per image of ``x`` ``(n, C, H, W)`` inside its eps-ball and [0, 1], image-major
    ``(n * PROBES, C, H, W)``: random corners of the Linf ball, or random points of the L2 sphere, then clipped."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + key)
    base = x.double().repeat_interleave(PROBES, dim=0)
    if threat_model == "Linf":
        step = eps * (torch.randint(0, 2, base.shape, generator=generator, dtype=torch.float64) * 2 - 1)
    else:
        direction = torch.randn(base.shape, generator=generator, dtype=torch.float64)
        step = eps * direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
    return (base + step).clamp(0, 1).float().numpy()


def gradient_step(x: np.ndarray, start: np.ndarray, signs: np.ndarray, *, threat_model: str, eps: float) -> np.ndarray:
    """One full step of size eps from ``x`` along the gradient signs measured at ``start`` (a zero sign keeps the
    start's direction): an FGSM point inside the eps-ball and [0, 1]."""
    direction = np.where(signs != 0, signs, np.sign(start - x)).astype(np.float64)
    if threat_model != "Linf":
        norm = np.sqrt((direction.reshape(len(x), -1) ** 2).sum(1)).clip(min=1e-12)
        direction /= norm.reshape(-1, *[1] * (x.ndim - 1))
    return np.clip(x.astype(np.float64) + eps * direction, 0, 1).astype(np.float32)


def probe_chunks(
    sessions,
    run_id: str,
    channel,
    reclassifier: Reclassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    resolved: ResolvedConfig,
    budgets: Budgets,
    *,
    only: list[int] | None = None,
) -> None:
    """Classify every not yet probed chunk's probe points in the attacking and the fresh worker; where they
    disagree and the fresh worker misclassifies a robust example's probe, the example is stored as not robust.
    ``only``: the start indices of the chunks this process probes (a torchrun rank: harness.pipeline.distributed)."""
    with store.transaction(sessions) as s:
        chunks = s.get(store.RunRecord, run_id).details.get("autoattack", {}).get("chunks", {})
        todo = sorted((int(start), int(c["n"])) for start, c in chunks.items() if "probe" not in c)
        todo = [(start, n) for start, n in todo if only is None or start in only]
    per = PROBES + 1
    for start, n in todo:
        xs = x[start : start + n]
        corners = probe_points(xs, threat_model=resolved.threat_model, eps=resolved.eps, seed=resolved.seed, key=start)
        first = corners[::PROBES]
        signs = reclassifier.signs(first, 2_000_000_011 + start, resolved.batch_size)
        step = gradient_step(xs.numpy(), first, signs, threat_model=resolved.threat_model, eps=resolved.eps)
        points = np.concatenate([corners.reshape(n, PROBES, *xs.shape[1:]), step[:, None]], axis=1)
        points = points.reshape(n * per, *xs.shape[1:])
        verify_adversarial(
            xs.repeat_interleave(per, dim=0),
            torch.as_tensor(points),
            threat_model=resolved.threat_model,
            eps=resolved.eps,
        )
        ours = classify(channel, points, resolved.batch_size, reclassifier.num_classes, budgets).argmax(1)
        stored, differ, ties = settle(ours, reclassifier.logits(points, 1_000_000_007 + start, resolved.batch_size))
        labels = y[start : start + n].numpy()
        caught = (differ & (stored != np.repeat(labels, per))).reshape(n, per)
        norms = (torch.as_tensor(points).double() - xs.double().repeat_interleave(per, dim=0)).flatten(1)
        norms = (norms.abs().amax(1) if resolved.threat_model == "Linf" else norms.norm(dim=1)).numpy()
        with store.transaction(sessions) as s:
            run = s.get(store.RunRecord, run_id)
            for e in run.examples:
                i = e.idx - start
                if 0 <= i < n and e.robust_correct and caught[i].any():
                    j = i * per + int(caught[i].argmax())
                    e.robust_correct, e.adv_pred, e.perturbation = False, int(stored[j]), float(norms[j])
            details = dict(run.details)
            chunks = dict(details["autoattack"]["chunks"])
            chunks[str(start)] = {
                **chunks[str(start)],
                "probe": {"points": len(points), "disagreements": int(differ.sum()), "ties": ties},
            }
            details["autoattack"] = {**details["autoattack"], "chunks": chunks}
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
