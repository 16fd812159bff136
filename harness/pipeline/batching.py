"""Batch sizes: the attack chunk, which fixes a run's numbers, and ``--batch-size auto``, which fits the device.

Two sizes are easy to confuse. The **chunk** (``--chunk-size``; by default ``--batch-size`` when that is a number,
else 250) is the unit the numbers depend on: each chunk is one seeded AutoAttack call, and AutoAttack re-seeds every
batch it runs, so the same images attacked in other batches get other random starts. (The explain stage's randomised
attribution methods, seeded once per call, explain all images in one call, so the explain batch changes no number.)
The chunk is part of the run's configuration key (``ResolvedConfig.batch_size``).

``--batch-size auto`` never changes a number: the worker probes, once per run and on its own device, the largest
batch that fits the memory for the attack's step (forward and backward to the input, at most one chunk) and for
each attribution method of the suite (at most the images explained at once; halving on out-of-memory,
harness.core.memory), and the parent

- attacks in chunks as always, and refuses, with one line, a chunk that does not fit (a smaller chunk would be a
  different run: pass ``--chunk-size``);
- runs the explain stage in the batch that fits when it is smaller than the suite's batch (deterministic maps and
  the metrics' forward passes do not depend on the batch; randomised methods explain all images in one call).

What was probed is recorded in the run's ``details["batch_size"]`` (per device).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

from harness import store
from harness.core.config import AUTO, check_batch_sizes, parse_batch_size  # noqa: F401  (parsed with the options)
from harness.core.errors import HarnessError
from harness.pipeline.plan import Todo
from harness.worker.protocol import FitRequest
from metrics.suite import SuiteConfig

DEFAULT_CHUNK = 250


def chunk_size(batch_size: int | str, chunk: int | None) -> int:
    """The attack chunk: ``--chunk-size`` (``chunk``), else ``--batch-size`` when it is a number, else 250.

    >>> chunk_size(64, None), chunk_size("auto", None), chunk_size("auto", 32)
    (64, 250, 32)
    """
    if chunk is not None:
        return chunk
    return DEFAULT_CHUNK if batch_size == AUTO else int(batch_size)


def fit(sessions, channel, todo: Todo, *, auto: bool, chunk: int, device: str, budget: float | None) -> Todo:
    """With ``--batch-size auto`` (``auto``): probe the worker's device once, check the ``chunk`` fits, pick the
    explain stage's batch, record both on the run; returns ``todo`` with the explain batch set (unchanged
    otherwise)."""
    if not auto or (not todo.chunks and not todo.probes and todo.suite is None):
        return todo
    suite = todo.suite
    explain_upper = _explain_upper(suite)
    request = FitRequest(op="fit", attack=chunk)
    if suite is not None:
        request.update(suite=asdict(suite), explain=explain_upper)
    reply = channel.request(request, budget=budget)
    attack = _probed(reply.get("attack"), chunk, "attack")
    explain = _probed(reply.get("explain"), explain_upper, "explain") if suite is not None else None
    _record(sessions, todo.run_id, device, chunk, attack, explain, suite)
    if attack["batch"] < chunk and todo.chunks:
        raise HarnessError(
            f"--batch-size auto: an attack chunk of {chunk} images does not fit the memory of {device} (the largest "
            f"batch that fits: {attack['batch']}), and the chunk fixes the numbers",
            f"pass --chunk-size {attack['batch']} (or less): a run with other chunks is a different run",
        )
    if suite is None or explain["batch"] >= explain_upper:
        return todo
    # randomised methods explain all images in one call whatever the batch (metrics.suite), deterministic maps and the
    # metrics' forward passes do not depend on it: the explain stage may run in the batch that fits
    return replace(todo, suite=replace(suite, batch_size=explain["batch"]))


def _explain_upper(suite: SuiteConfig | None) -> int:
    """The most images the explain stage puts through an attribution method at once: its batch, at most the images
    explained and the GridPG rows (4 cells per composite)."""
    if suite is None:
        return 0
    return max(1, min(suite.batch_size, max(suite.n_explain, 4 * suite.n_composites)))


def _probed(value: Any, upper: int, what: str) -> dict[str, Any]:
    """The worker's answer for one stage, checked: a batch in [1, upper] and the batches that failed."""
    ok = isinstance(value, dict) and set(value) == {"batch", "failed"}
    batch = value.get("batch") if ok else None
    failed = value.get("failed") if ok else None
    ok = ok and isinstance(batch, int) and not isinstance(batch, bool) and 1 <= batch <= upper
    ok = ok and isinstance(failed, list) and len(failed) <= 64
    ok = ok and all(isinstance(f, int) and not isinstance(f, bool) and batch < f <= upper for f in failed)
    if not ok:
        raise HarnessError(
            f"the worker answered the {what} batch-size probe with a malformed reply",
            "the submission must not write to the worker's protocol stream; run without --batch-size auto",
        )
    return {"batch": batch, "failed": failed}


def _record(
    sessions, run_id: str, device: str, chunk: int, attack: dict, explain: dict | None, suite: SuiteConfig | None
) -> None:
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        details = dict(run.details)
        sizes = dict(details.get("batch_size", {}))
        sizes.update(requested=AUTO, chunk=chunk)
        devices = dict(sizes.get("devices", {}))
        devices[device] = {"attack": attack, **({"explain": explain} if explain is not None else {})}
        if suite is not None:
            devices[device]["explain_batch"] = min(explain["batch"], suite.batch_size)
        sizes["devices"] = devices
        details["batch_size"] = sizes
        run.details = details
