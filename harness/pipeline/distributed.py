"""One run over several processes, GPUs and nodes: ``torchrun --nproc_per_node K [--nnodes N ...] -m harness run ...``.

Every rank is a whole robint-bench parent with its own sandboxed worker on its own device (``cuda:LOCAL_RANK`` when
CUDA is there and ``--device`` is auto or cuda, else what ``--device`` says). The ranks talk through
``torch.distributed`` (the gloo backend: only small Python objects travel, so no GPU is needed for it) and share
the run through the database:

- rank 0 opens the run (reuse, resume or create the run row: harness.pipeline.lifecycle.open_run) and broadcasts
  what is left to compute; the others never look the run up themselves;
- the work is dealt round-robin: the attack chunks still missing (each one seeded AutoAttack call, so any deal gives
  the same numbers), the chunks attacked but not yet probed, and the explain stage's methods (each method's scores
  use per-method, per-metric seeds; the controls and the reliability scores are units of their own);
- each rank commits what it computes as it goes; all writes to the shared run row are serialised
  (harness.store.engine.serialize_transactions), so no rank loses another's update;
- rank 0 alone runs the feature visualisation, draws the figures and finishes (aggregates) the run, after a barrier.

A rank killed mid-run loses only the chunk or score it was computing: torchrun then stops the others, the run is
left ``running`` with a dead owner (so ``interrupted``), and the same command resumes it, dealing out what is
missing. With more than one node the database must be a server that every node reaches: SQLite is refused.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from harness import store
from harness.core.errors import HarnessError
from harness.pipeline.plan import Request, Todo
from harness.store.engine import serialize_transactions
from metrics.suite import SuiteConfig

TIMEOUT_S = float(os.environ.get("ROBINT_DISTRIBUTED_TIMEOUT", 7 * 24 * 3600))  # the longest wait at a barrier


@dataclass(frozen=True)
class Group:
    """This process's place among the processes sharing one run (a single process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def leads(self) -> bool:
        """Rank 0: owns the run row, the feature visualisation, the figures and the final aggregation."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        """Wait until every rank got here."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        box = [value if self.leads else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def deal(self, sessions, open_run: Callable[[], Todo]) -> Todo:
        """Rank 0 opens the run (``open_run``: what is left to compute) and broadcasts; every rank gets its share.

        An error on rank 0 while it opens the run (e.g. an identical run in progress) is raised on every rank, so
        each one exits with the same one-line message.
        """
        if not self.distributed:
            return open_run()
        todo, unprobed, error = None, [], None
        if self.leads:
            try:
                todo = open_run()
                unprobed = unprobed_chunks(sessions, todo.run_id)
            except HarnessError as exc:
                error = (exc.problem, exc.fix)
            except BaseException as exc:
                error = (f"rank 0 failed while opening the run: {type(exc).__name__}: {exc}", "see rank 0's error")
                self.broadcast((None, [], error))
                raise
        todo, unprobed, error = self.broadcast((todo, unprobed, error))
        if error is not None:
            raise HarnessError(*error)
        serialize_transactions(sessions, f"run:{todo.run_id}")
        return share(todo, unprobed, self.rank, self.world)

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def join(request: Request) -> tuple[Group, Request]:
    """This process's :class:`Group` (from torchrun's environment: ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``...) and
    its request: its own device, and an ``auto`` memory limit shared by the ranks of its node.

    Raises:
        HarnessError: more than one node with a SQLite database.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Group(), request
    db = request.storage.db
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    nodes = int(os.environ.get("GROUP_WORLD_SIZE", "0")) or -(-world // local_world)
    if nodes > 1 and _is_sqlite(db):
        raise HarnessError(
            f"a run over {nodes} nodes needs a database server that every node reaches, and --db {db} is a "
            "SQLite file on one machine",
            "pass --db postgresql+psycopg://USER@HOST/DB (pip install -e .[postgres]), or run on one node",
        )
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=timedelta(seconds=TIMEOUT_S))
    limits = replace(request.limits, device=rank_device(request.limits.device, local_rank))
    if limits.memory_limit.strip().lower() == "auto" and local_world > 1:
        from harness.pipeline.channels import memory_bytes

        limits = replace(limits, memory_limit=f"{max(4 << 30, memory_bytes('auto') // local_world) >> 20}M")
    if rank > 0:  # one summary on the terminal: rank 0's (errors still reach stderr from every rank)
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (kept open for the life of the process)
        limits = replace(limits, progress=False)
    return Group(rank, world, local_rank), replace(request, limits=limits)


def rank_device(device: str, local_rank: int) -> str:
    """The device of the rank with ``local_rank`` on its node: ``auto`` and ``cuda`` become ``cuda:LOCAL_RANK``
    (modulo the GPUs visible) when CUDA is there; ``auto`` is ``cpu`` otherwise; an explicit device is kept.

    >>> rank_device("cpu", 3), rank_device("cuda:1", 3)
    ('cpu', 'cuda:1')
    """
    import torch

    text = device.strip().lower()
    if text in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{local_rank % torch.cuda.device_count()}"
    return "cpu" if text == "auto" else device


def share(todo: Todo, unprobed: list[int], rank: int, world: int) -> Todo:
    """Rank ``rank``'s part of rank 0's ``todo``: every ``world``-th missing chunk, every ``world``-th chunk left
    unprobed by an interrupted run (besides its own chunks, which it probes after attacking them), and every
    ``world``-th unit of the explain stage (:func:`split_suite`).

    >>> p = Todo("r", [(0, 2), (2, 4), (4, 5)], None)
    >>> share(p, [6], 1, 2).chunks, share(p, [6], 1, 2).probes, share(p, [6], 0, 2).probes
    ([(2, 4)], [2], [0, 4, 6])
    """
    chunks = todo.chunks[rank::world]
    probes = sorted({start for start, _ in chunks} | set(unprobed[rank::world]))
    return replace(todo, chunks=chunks, suite=split_suite(todo.suite, rank, world), probes=probes)


def split_suite(suite: SuiteConfig | None, rank: int, world: int) -> SuiteConfig | None:
    """Rank ``rank``'s share of the explain stage: every ``world``-th of its units (each attribution method with its
    metrics, each control, the reliability scores, the bounds), or None when it has none."""
    if suite is None:
        return None
    units: list[tuple[str, str]] = [("method", m) for m in suite.methods] + [("control", c) for c in suite.controls]
    units += [("reliability", "")] if suite.reliability else []
    units += [("bounds", "")] if suite.bounds and any(p[0].startswith("bound_") for p in suite.pairs()) else []
    mine = units[rank::world]
    if not mine:
        return None
    return replace(
        suite,
        methods=tuple(name for kind, name in mine if kind == "method"),
        controls=tuple(name for kind, name in mine if kind == "control"),
        reliability=("reliability", "") in mine,
        bounds=("bounds", "") in mine,
    )


def unprobed_chunks(sessions, run_id: str) -> list[int]:
    """Start indices of the run's committed chunks that were attacked but not probed (an interrupted run's)."""
    with store.transaction(sessions) as s:
        chunks = s.get(store.RunRecord, run_id).details.get("autoattack", {}).get("chunks", {})
        return sorted(int(start) for start, c in chunks.items() if "probe" not in c)


def _is_sqlite(url: str) -> bool:
    return url.strip().lower().startswith("sqlite")
