"""The fresh worker, parent side: the numbers stored are the answers of a worker that never attacked anything.

A model that remembers the images it was shown (and answers their label for anything near them), or that knows
where it runs, looks robust to any attack run in the process that showed them. So once the attacking worker has
exited (and everything it started with it: harness.worker.containment), a **fresh worker** (:class:`FreshWorker`)
loads its own private copy of the model's declared files (harness.pipeline.source) in a new sandbox; it can read no
data, is never sent a label, and no channel joins it to the attacking worker (none of its processes is alive, no
inode of the model is shared). For each chunk (:func:`verify_chunks`) it computes one gradient step of its own from
a random point of each eps-ball (:func:`gradient_step`), then classifies every point the harness evaluates:

- the chunk's adversarial examples that moved, its step points and the ``PROBES`` random points of each eps-ball
  (harness.pipeline.attack.probe_points), in one shuffled request; on the 1/255 grid of 8-bit data, the same points
  again after rounding to the grid toward the clean image (:func:`to_grid`: still inside the eps-ball);
- then the clean images (last: so it cannot carry what it sees of them to the perturbed points).

Its answers are the stored ones: an example counts as clean-correct when the fresh worker classifies the clean image
correctly, and as robust only when it also classifies every evaluated point of the eps-ball correctly (AutoAttack's
adversarial example, the step, the probes, each in both versions on the grid); the stored adversarial prediction and
perturbation are those of the first point it misclassifies. Where its answers differ from the attacking worker's
(clean images, adversarial examples, probes) beyond a rounding tie (:func:`settle`: argmax, ties judged on softmax
probabilities relative to their spread, which no rescaling or shift of the logits changes), the run is flagged
``stateful-model``; where a point is classified correctly off the grid and wrongly once rounded to it more often
than chance allows, ``grid-inconsistent`` (harness.attack.sanity).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import store
from harness.attack.verify import verify_adversarial
from harness.core.config import ResolvedConfig
from harness.core.errors import HarnessError
from harness.pipeline import validate
from harness.pipeline.artifacts import pack, unpack_all
from harness.pipeline.attack import ADVERSARIAL, CORNERS, classify, probe_points, unverified_chunks
from harness.pipeline.budgets import PROBES, Budgets
from harness.pipeline.channels import WorkerLimits, open_channel
from harness.pipeline.plan import RunPlan
from harness.pipeline.source import ModelFiles, ModelSource
from harness.worker.protocol import PointsRequest, WorkerConfig, load_request, unpack_images

TIE = 1e-4  # a disagreement is a rounding tie when the two classes' probabilities differ by at most this x spread
_ON_GRID = 1e-4  # in steps of 1/255: a point this close to a grid value is on it (float error)


@dataclass
class FreshWorker:
    """A fresh worker that classifies points it is sent: opened on first use, which must come after ``after`` (the
    attacking worker's channel) has closed; closed by :meth:`close`. It loads the model from its own private copy of
    ``files`` (the run's master copy) and may read nothing else (``forbidden``: never the data, the database, the
    archive)."""

    source: ModelSource
    files: ModelFiles
    limits: WorkerLimits
    metadata: Mapping[str, Any]  # what the attacking worker reported: the fresh one must report the same
    budgets: Budgets
    num_classes: int
    seed: int
    after: Any
    forbidden: tuple[Path, ...] = ()
    output: Any = None
    channel: Any = field(default=None, repr=False)

    @classmethod
    def of(cls, plan: RunPlan, files: ModelFiles, *, after: Any, forbidden=(), output=None) -> FreshWorker:
        return cls(
            plan.source,
            files,
            plan.limits,
            plan.metadata,
            plan.budgets,
            plan.dataset.num_classes,
            plan.resolved.seed,
            after,
            tuple(forbidden),
            output,
        )

    def _open(self) -> None:
        if self.channel is not None:
            return
        if not getattr(self.after, "closed", False):
            raise RuntimeError("the fresh worker starts only after the attacking worker has exited")
        self.channel = open_channel(
            self.limits, self.files.files(), forbidden=self.forbidden, output=self.output, run_dirs=(self.files.root,)
        )
        config = WorkerConfig(self.source.ref(self.channel.model_root), self.limits.device, self.limits.progress)
        reply = self.channel.request(load_request(config), budget=self.budgets.load)
        if validate.loaded(reply) != self.metadata:
            raise HarnessError(
                "the submission reported different METADATA when loaded a second time",
                "METADATA must not depend on when or where the submission is loaded",
            )

    def logits(self, points: np.ndarray, key: int, batch_size: int) -> np.ndarray:
        """The fresh worker's logits ``(n, K)`` for ``points`` ``(n, C, H, W)``, sent in a seeded shuffled order."""
        self._open()
        order = np.random.default_rng([self.seed, key]).permutation(len(points))
        shuffled = classify(self.channel, points[order], batch_size, self.num_classes, self.budgets)
        logits = np.empty_like(shuffled)
        logits[order] = shuffled
        return logits

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


def settle(ours: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The fresh worker's predictions (its argmax, always the stored answer) and where they disagree with the
    attacking worker's ``ours`` beyond a rounding tie: the fresh worker's softmax probabilities of its class and of
    ours differ by at most :data:`TIE` times the row's probability spread (max - min), a test no shift or scaling of
    the logits can pass for a real difference. Returns (predictions, disagreement mask, ties).

    >>> settle(np.array([0, 1, 2]), np.array([[2.0, 1.0, 0.0], [1.0, 1.0 - 1e-7, 0.0], [5.0, 0.0, 0.0]]))
    (array([0, 0, 0]), array([False, False,  True]), 1)
    """
    fresh = logits.argmax(1)
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    rows = np.arange(len(ours))
    gap = p[rows, fresh] - p[rows, ours]
    differ = fresh != ours
    tie = differ & (gap <= TIE * (p.max(1) - p.min(1)))
    return fresh, differ & ~tie, int(tie.sum())


def on_grid(x: torch.Tensor) -> bool:
    """Whether every pixel of ``x`` is a step of 1/255 exactly as the 8-bit data loaders make them."""
    steps = np.rint(x.double().numpy() * 255)
    return bool(((steps >= 0) & (steps <= 255)).all()) and np.array_equal(
        unpack_images(steps.astype(np.uint8), 255), x.float().numpy()
    )


def to_grid(points: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``points`` ``(m, C, H, W)`` rounded to the 1/255 grid toward their clean images ``clean`` (on the grid):
    every pixel moves to the grid value nearest to it on the way back to the clean pixel, so the rounded point is
    inside every eps-ball (and [0, 1]) the point was in.

    >>> c = np.full((1, 1, 1, 2), 50 / 255, np.float32)
    >>> (to_grid(c + np.float32([0.1, -0.1]).reshape(1, 1, 1, 2), c) * 255).round(3)
    array([[[[75., 25.]]]], dtype=float32)
    """
    base = np.rint(clean.astype(np.float64) * 255)
    delta = points.astype(np.float64) * 255 - base
    near = np.rint(delta)
    steps = np.where(np.abs(delta - near) <= _ON_GRID, near, np.trunc(delta))
    return unpack_images(np.clip(base + steps, 0, 255).astype(np.uint8), 255)


def gradient_step(x: np.ndarray, start: np.ndarray, signs: np.ndarray, *, threat_model: str, eps: float) -> np.ndarray:
    """One full step of size eps from ``x`` along the gradient signs measured at ``start`` (a zero sign keeps the
    start's direction): an FGSM point inside the eps-ball and [0, 1]."""
    direction = np.where(signs != 0, signs, np.sign(start - x)).astype(np.float64)
    if threat_model != "Linf":
        norm = np.sqrt((direction.reshape(len(x), -1) ** 2).sum(1)).clip(min=1e-12)
        direction /= norm.reshape(-1, *[1] * (x.ndim - 1))
    return np.clip(x.astype(np.float64) + eps * direction, 0, 1).astype(np.float32)


def verify_chunks(
    sessions,
    run_id: str,
    fresh: FreshWorker,
    x: torch.Tensor,
    y: torch.Tensor,
    resolved: ResolvedConfig,
    *,
    only: list[int] | None = None,
) -> None:
    """Have the fresh worker classify every not yet verified chunk's points (module doc) and store its answers."""
    grid = on_grid(x)
    for start, n in unverified_chunks(sessions, run_id, only):
        _verify_chunk(sessions, run_id, fresh, x[start : start + n], y[start : start + n], start, resolved, grid)


def _verify_chunk(
    sessions, run_id: str, fresh: FreshWorker, xs: torch.Tensor, ys: torch.Tensor, start: int, resolved, grid: bool
) -> None:
    n = len(xs)
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        rows = sorted((e for e in run.examples if start <= e.idx < start + n), key=lambda e: e.idx)
        ours_clean = np.array([e.clean_pred for e in rows], dtype=np.int64)
        ours_adv = np.array([e.adv_pred for e in rows], dtype=np.int64)
        adversarial = _artifact(s, run_id, f"{ADVERSARIAL}{start}")
        ours_corners = _artifact(s, run_id, f"{CORNERS}{start}")["classes"].astype(np.int64)
    if len(rows) != n:
        raise HarnessError(f"run {run_id} has {len(rows)} of the {n} examples of chunk {start}", "this is a bug")
    moved = adversarial["moved"].astype(bool)
    x_adv = np.zeros((n, *xs.shape[1:]), dtype=np.float32)
    x_adv[moved] = adversarial["x_adv"]
    corners = probe_points(xs, threat_model=resolved.threat_model, eps=resolved.eps, seed=resolved.seed, key=start)
    tally = _Tally(n, grid)
    per_example = (PROBES + 2) * (2 if grid else 1) * int(np.prod(xs.shape[1:])) * 4
    block = max(1, BLOCK_BYTES // per_example)
    for a in range(0, n, block):
        b = min(n, a + block)
        _verify_block(
            fresh,
            tally,
            xs[a:b].numpy(),
            ys[a:b].numpy(),
            a,
            start,
            resolved,
            grid,
            moved[a:b],
            x_adv[a:b],
            ours_adv[a:b],
            corners[a * PROBES : b * PROBES],
            ours_corners[a * PROBES : b * PROBES],
        )
    clean_logits = fresh.logits(xs.numpy(), 3_000_000_019 + start, resolved.batch_size)  # last: after every point
    fresh_clean, clean_differ, clean_ties = settle(ours_clean, clean_logits)
    adv_pred = np.where(moved, tally.adv_pred, fresh_clean)
    details: dict[str, Any] = {
        "reclassified": {"points": int(moved.sum()), "disagreements": tally.adv_differ, "ties": tally.adv_ties},
        "clean": {"points": n, "disagreements": int(clean_differ.sum()), "ties": clean_ties},
        "probe": {"points": n * (PROBES + 1), "disagreements": tally.probe_differ, "ties": tally.probe_ties},
    }
    if grid:
        details["grid"] = {"points": tally.grid_points, "to_wrong": tally.to_wrong, "to_right": tally.to_right}
    _store(sessions, run_id, start, ys.numpy(), fresh_clean, adv_pred, tally, details)


BLOCK_BYTES = 64 << 20  # the most bytes of points the fresh worker is sent for one block of a chunk's examples


class _Tally:
    """What the fresh worker's answers for one chunk add up to: per example its answer at the adversarial example
    (``adv_pred``) and the first point of its eps-ball it misclassifies (``missed``: prediction and perturbation),
    and the counts of disagreements with the attacking worker and of grid flips."""

    def __init__(self, n: int, grid: bool) -> None:
        self.adv_pred = np.zeros(n, dtype=np.int64)
        self.missed: dict[int, tuple[int, float]] = {}
        self.adv_differ = self.adv_ties = self.probe_differ = self.probe_ties = 0
        self.grid_points = self.to_wrong = self.to_right = 0


def _verify_block(
    fresh: FreshWorker,
    tally: _Tally,
    clean: np.ndarray,
    labels: np.ndarray,
    offset: int,
    start: int,
    resolved,
    grid: bool,
    moved: np.ndarray,
    x_adv: np.ndarray,
    ours_adv: np.ndarray,
    corners: np.ndarray,
    ours_corners: np.ndarray,
) -> None:
    """The fresh worker's answers at the points of examples ``offset``.. of the chunk (module doc), added to
    ``tally``."""
    threat, eps, batch, n = resolved.threat_model, resolved.eps, resolved.batch_size, len(clean)
    key = start + offset
    first = corners[::PROBES]
    if grid:
        first = to_grid(first, clean)
    signs = fresh.signs(first, 2_000_000_011 + key, batch)
    step = gradient_step(clean, first, signs, threat_model=threat, eps=eps)
    points = [x_adv[moved], step, corners]
    owner = [np.flatnonzero(moved), np.arange(n), np.repeat(np.arange(n), PROBES)]
    if grid:
        points += [to_grid(p, clean[o]) for p, o in zip(points, owner, strict=True)]
        owner += owner
    everything, owners = np.concatenate(points), np.concatenate(owner)
    verify_adversarial(torch.as_tensor(clean[owners]), torch.as_tensor(everything), threat_model=threat, eps=eps)
    logits = fresh.logits(everything, 1_000_000_007 + key, batch)
    sizes = np.cumsum([0, *(len(p) for p in points)])
    parts = [logits[a:b] for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    fresh_adv, adv_differ, adv_ties = settle(ours_adv[moved], parts[0])
    _, corner_differ, corner_ties = settle(ours_corners, parts[2])
    tally.adv_pred[offset + np.flatnonzero(moved)] = fresh_adv
    tally.adv_differ += int(adv_differ.sum())
    tally.adv_ties += adv_ties
    tally.probe_differ += int(corner_differ.sum())
    tally.probe_ties += corner_ties
    predictions = logits.argmax(1)
    wrong = predictions != labels[owners]
    norms = _norms(everything - clean[owners], threat)
    for j in np.flatnonzero(wrong):  # in order: the adversarial example first, then the step, the probes, the grid
        tally.missed.setdefault(offset + int(owners[j]), (int(predictions[j]), float(norms[j])))
    if grid:
        half = len(everything) // 2
        off, on = ~wrong[:half], ~wrong[half:]
        tally.grid_points += half
        tally.to_wrong += int((off & ~on).sum())
        tally.to_right += int((~off & on).sum())


def _store(
    sessions,
    run_id: str,
    start: int,
    labels: np.ndarray,
    fresh_clean: np.ndarray,
    adv_pred: np.ndarray,
    tally: _Tally,
    details: dict[str, Any],
) -> None:
    """Store the fresh worker's answers for one chunk: per example the clean prediction, and the first point of its
    eps-ball it misclassifies (prediction and perturbation), else its answer at the adversarial example."""
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        by_idx = {e.idx: e for e in run.examples if start <= e.idx < start + len(labels)}
        for i in range(len(labels)):
            e = by_idx[start + i]
            e.clean_pred, e.clean_correct = int(fresh_clean[i]), bool(fresh_clean[i] == labels[i])
            e.adv_pred = int(adv_pred[i])
            e.robust_correct = e.clean_correct and i not in tally.missed
            if e.clean_correct and i in tally.missed:
                e.adv_pred, e.perturbation = tally.missed[i]
        _update_figure(s, run_id, start, fresh_clean, adv_pred)
        for key in (f"{ADVERSARIAL}{start}", f"{CORNERS}{start}"):
            artifact = s.get(store.ArtifactRecord, (run_id, key))
            if artifact is not None:
                s.delete(artifact)
        info = dict(run.details)
        chunks = dict(info["autoattack"]["chunks"])
        chunks[str(start)] = {**chunks[str(start)], **details}
        info["autoattack"] = {**info["autoattack"], "chunks": chunks}
        run.details, run.heartbeat_at = info, store.utcnow()


def _update_figure(s, run_id: str, start: int, fresh_clean: np.ndarray, adv_pred: np.ndarray) -> None:
    """The adversarial-examples figure shows the fresh worker's predictions at the adversarial examples it keeps."""
    row = s.get(store.ArtifactRecord, (run_id, "adversarial"))
    if row is None:
        return
    kept = unpack_all(row.data)
    mine = (kept["idx"] >= start) & (kept["idx"] < start + len(fresh_clean))
    if not mine.any():
        return
    local = kept["idx"][mine] - start
    kept["clean_pred"][mine], kept["adv_pred"][mine] = fresh_clean[local], adv_pred[local]
    row.data = pack(**kept)


def _artifact(s, run_id: str, key: str) -> dict[str, np.ndarray]:
    row = s.get(store.ArtifactRecord, (run_id, key))
    if row is None:
        raise HarnessError(f"run {run_id} lacks its artifact {key!r}", "pass --fresh for a new run")
    return unpack_all(row.data)


def _norms(delta: np.ndarray, threat_model: str) -> np.ndarray:
    flat = delta.reshape(len(delta), -1).astype(np.float64)
    return np.abs(flat).max(1) if threat_model == "Linf" else np.sqrt((flat**2).sum(1))
