"""A run's plan, as data. The user's :class:`~harness.core.config.RunConfig` is checked and parsed once into a
:class:`Request` (harness.pipeline.resolve.check_options: before any worker starts); once the worker reported the
submission's METADATA, the request is resolved once into the frozen :class:`RunPlan`
(harness.pipeline.resolve.resolve), which :func:`harness.pipeline.evaluate.evaluate` passes down: every stage takes
the parts of the plan it needs, none takes the RunConfig. The worker is told only :meth:`RunPlan.worker` and
:meth:`RunPlan.worker_run` (harness.worker.protocol). What is left to compute of a stored run is a :class:`Todo`
(harness.pipeline.lifecycle.open_run)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.attack.registry import Attack
from harness.core.config import ResolvedConfig
from harness.data import DatasetInfo
from harness.pipeline.budgets import Budgets
from harness.pipeline.channels import WorkerLimits
from harness.pipeline.source import ModelSource
from harness.worker.protocol import WorkerConfig, WorkerRun
from metrics.featurevis.pipeline import FeatureVisConfig
from metrics.suite import SuiteConfig


@dataclass(frozen=True)
class Storage:
    """Where the run is stored (``db``), and what happens to an identical stored run: reused, or with ``fresh`` a
    new run; with ``rescore`` a completed one gets new interpretability scores. ``sweep``: the sweep entry the run
    is a job of ({"id", "entry", "key"}; harness.store.sweeps)."""

    db: str
    fresh: bool = False
    rescore: bool = False
    sweep: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Request:
    """The options of one run, checked and parsed once; what the submission's METADATA decides is still None
    (``dataset``, ``threat_model``, ``eps``). ``dataset_info`` is the given data set's entry (None without one)."""

    model: Path | None
    robustbench: str | None
    model_dir: Path | None
    data_dir: Path | None
    dataset: str | None
    dataset_info: DatasetInfo | None
    threat_model: str | None  # canonical spelling (harness.core.threat)
    eps: tuple[float, str] | None  # (value, canonical text)
    attack: Attack
    n_examples: int
    seed: int
    chunk: int  # the attack chunk, which fixes the numbers (harness.pipeline.batching)
    auto_batch: bool  # --batch-size auto: fit the worker's device (harness.pipeline.batching.fit)
    suite: SuiteConfig | None
    featurevis: FeatureVisConfig | None
    limits: WorkerLimits
    storage: Storage
    preset: str = "default"  # the preset the settings came from (harness.core.presets), shown in the run's header

    def worker(self, source: ModelSource, root: Path) -> WorkerConfig:
        """What a worker loading the model from ``source`` is told (before the run is resolved), its private copy of
        the model's files being ``root``."""
        return WorkerConfig(source.ref(root), self.limits.device, self.limits.progress)


@dataclass(frozen=True)
class RunPlan:
    """One run, resolved once: the settings that fix its robustness numbers (``resolved``, their hash is the run's
    identity), the attack, the data set, the interpretability suite and feature visualisation (None: not run), the
    model's source and METADATA, the data directory, the workers' limits and the budgets of each step, and how the
    run is stored."""

    resolved: ResolvedConfig
    attack: Attack
    dataset: DatasetInfo
    suite: SuiteConfig | None
    featurevis: FeatureVisConfig | None
    source: ModelSource
    metadata: Mapping[str, Any]
    data_dir: Path
    limits: WorkerLimits
    budgets: Budgets
    auto_batch: bool
    storage: Storage

    def worker(self, root: Path) -> WorkerConfig:
        """What each of the run's workers is told when it loads the model, its private copy of the model's files
        being ``root``."""
        return WorkerConfig(self.source.ref(root), self.limits.device, self.limits.progress)

    def worker_run(self) -> WorkerRun:
        """What the attacking worker is told about the run (the fresh worker that re-classifies gets nothing); the
        images come separately (harness.pipeline.images)."""
        r = self.resolved
        return WorkerRun(
            dataset=r.dataset,
            n_examples=r.n_examples,
            threat_model=r.threat_model,
            eps=r.eps,
            attack=r.attack,
            seed=r.seed,
            chunk=r.batch_size,
        )


@dataclass
class Todo:
    """What this process computes for a run: attack chunks, the explain stage's part of the suite, and the start
    indices of the chunks whose probes it checks (None: every chunk not yet probed). A torchrun rank gets its share
    of rank 0's (harness.pipeline.distributed)."""

    run_id: str
    chunks: list[tuple[int, int]]
    suite: SuiteConfig | None
    reused: bool = False
    resumed: bool = False
    probes: list[int] | None = None


def attack_chunks(n: int, size: int) -> list[tuple[int, int]]:
    """The attack's committed chunks: ``[start, end)`` ranges of ``size`` examples (the last one shorter).

    >>> attack_chunks(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    return [(start, min(start + size, n)) for start in range(0, n, size)]
