"""The attack stage, parent side: validate each attacked chunk (harness.pipeline.validate), verify it against the
parent's own data with the parent's own eps, and commit it; then have the attacking worker classify each chunk's
random probe points.

What the attacking worker reports is provisional: its clean and adversarial predictions are stored as it sends
them, and its adversarial examples (those that moved) and its answers at the probe points are kept as artifacts,
until the fresh worker, started after this worker has exited, has classified the same points and its answers are
stored instead (harness.pipeline.fresh: a chunk is final once its details hold ``probe``). The probe points are
``PROBES`` random points of each example's eps-ball (seeded: corners of the Linf ball, or points of the L2 sphere,
clipped to [0, 1]).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from harness import store
from harness.attack.verify import verify_adversarial
from harness.core.config import ResolvedConfig
from harness.pipeline import validate
from harness.pipeline.artifacts import FIGURE_ROWS, pack, unpack_all
from harness.pipeline.budgets import PROBES, Budgets
from harness.worker.protocol import PointsRequest

ADVERSARIAL = "adversarial:"  # artifact key prefix: a chunk's moved adversarial examples, until the fresh worker's
CORNERS = "corners:"  # artifact key prefix: the attacking worker's classes at a chunk's probe points


def store_chunk(
    sessions,
    run_id: str,
    m: dict[str, Any],
    x: torch.Tensor,
    y: torch.Tensor,
    resolved: ResolvedConfig,
    schema: validate.AttackSchema,
) -> validate.Chunk:
    """Validate one attacked chunk against the parent's own data and commit its rows (the attacking worker's
    answers, provisional until the fresh worker's replace them) and its moved adversarial examples; returns the
    validated chunk."""
    chunk = schema.chunk(m)
    start, end, clean_pred, adv_pred = chunk.start, chunk.end, chunk.clean_pred, chunk.adv_pred
    x_adv = torch.as_tensor(chunk.x_adv)
    norms = verify_adversarial(x[start:end], x_adv, threat_model=resolved.threat_model, eps=resolved.eps)
    moved = (x_adv != x[start:end]).flatten(1).any(1).numpy()
    labels = y[start:end].numpy()
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        for i in range(end - start):
            clean_ok = bool(clean_pred[i] == labels[i])
            s.add(
                store.ExampleRecord(
                    run_id=run_id,
                    idx=start + i,
                    label=int(labels[i]),
                    clean_pred=int(clean_pred[i]),
                    adv_pred=int(adv_pred[i]),
                    clean_correct=clean_ok,
                    robust_correct=clean_ok and bool(adv_pred[i] == labels[i]),
                    perturbation=float(norms[i]),
                )
            )
        s.merge(
            store.ArtifactRecord(
                run_id=run_id, key=f"{ADVERSARIAL}{start}", data=packed(moved=moved, x_adv=chunk.x_adv[moved])
            )
        )
        keep_for_figure(s, run_id, start, x_adv, clean_pred, adv_pred, labels)
        details = dict(run.details)
        chunks = dict(details.get("autoattack", {}).get("chunks", {}))
        chunks[str(start)] = {"n": end - start, "accuracy_after": chunk.accuracy_after, "warnings": chunk.warnings}
        details["autoattack"] = {**details.get("autoattack", {}), "chunks": chunks}
        run.details, run.heartbeat_at = details, store.utcnow()
    return chunk


def unverified_chunks(sessions, run_id: str, only: list[int] | None = None) -> list[tuple[int, int]]:
    """(start, n) of the run's committed chunks that the fresh worker has not classified yet (no ``probe``), of
    ``only`` (start indices: a torchrun rank's share) when given."""
    with store.transaction(sessions) as s:
        chunks = s.get(store.RunRecord, run_id).details.get("autoattack", {}).get("chunks", {})
        todo = sorted((int(start), int(c["n"])) for start, c in chunks.items() if "probe" not in c)
    return [(start, n) for start, n in todo if only is None or start in only]


def classify_probes(
    sessions,
    run_id: str,
    channel,
    x: torch.Tensor,
    resolved: ResolvedConfig,
    budgets: Budgets,
    num_classes: int,
    *,
    only: list[int] | None = None,
) -> None:
    """The attacking worker's classes at the probe points of every chunk not yet verified, kept as an artifact for
    the fresh worker's comparison (harness.pipeline.fresh)."""
    for start, n in unverified_chunks(sessions, run_id, only):
        points = probe_points(
            x[start : start + n], threat_model=resolved.threat_model, eps=resolved.eps, seed=resolved.seed, key=start
        )
        ours = classify(channel, points, resolved.batch_size, num_classes, budgets).argmax(1)
        with store.transaction(sessions) as s:
            s.merge(store.ArtifactRecord(run_id=run_id, key=f"{CORNERS}{start}", data=packed(classes=ours)))
            s.get(store.RunRecord, run_id).heartbeat_at = store.utcnow()


def classify(channel, points: np.ndarray, batch_size: int, num_classes: int, budgets: Budgets) -> np.ndarray:
    """A worker's logits ``(n, K)`` for ``points``, validated."""
    reply = channel.request(
        PointsRequest(op="classify", x=points, batch_size=batch_size),
        budget=budgets.classify(len(points)),
        max_line=validate.max_line_classify(len(points), num_classes),
    )
    return validate.classified(reply, len(points), num_classes)


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


def packed(**arrays: np.ndarray) -> bytes:
    """Arrays as compressed npz bytes (adversarial examples compress well: most pixels sit at +-eps)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def keep_for_figure(
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
