"""The time each step of a run may take: its budgets, and the run's wall-clock limit (``--timeout``).

A worker reports liveness with heartbeats, which a submission can fake; so besides the stall timeout (no message at
all for ``--stall-timeout`` seconds) each step has a **budget**: the most seconds it may take to its next progress
message that the parent can check (an attack chunk, an attribution map, a score, its answer), heartbeats or not.
The budgets follow from the run's size (README, Security model):

- ``s`` = max(1, pixels per image / 784) (the image size relative to Fashion-MNIST), ``u`` = attack units
  (harness.attack.registry: standard 4, plus 16, rand 40, an explicit list: its length);
- load: the stall timeout; contract check: 10 stall timeouts;
- each attack chunk of ``b`` images: 300 s + 15 s x u x s x b;
- each attribution map or score: 600 s + 10 s x s x n_explain (with ``--reliability``, plus 1 s x s x the
  reliability work: 4 x iterations x perturbations x images x methods x metrics, sent at its end);
- feature visualisation: 600 s + 0.02 s x s x (2 x n_inversion x inversion_steps + per_class x classes x
  generation_steps);
- classifying ``m`` points, or their gradient signs (a chunk's 8 x b probe points in the attacking worker; in the
  fresh worker the gradient steps' b start points, then up to (8 + 2) x 2 x b points of the eps-balls, then the b
  clean images): the stall timeout (a fresh worker's start) + 300 s + 0.5 s x s x m.

The default ``--timeout`` (wall-clock limit of the whole run) is the sum of all budgets, plus 600 s for the
figures. ``--timeout S`` replaces it; ``--timeout none`` lifts it and every budget (only the stall timeout is
left: for code you trust).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.core.config import parse_timeout  # noqa: F401  (parsed with the options)
from metrics.featurevis.pipeline import FeatureVisConfig
from metrics.suite import SuiteConfig

PROBES = 8  # random eps-ball points per example that the attacking and a fresh worker classify (pipeline.attack)


@dataclass(frozen=True)
class Budgets:
    """Seconds each step of one run may take (None: unlimited, with ``--timeout none``); see the module doc."""

    stall: float
    scale: float  # s: pixels per image / 784, at least 1
    units: int  # u: attack units (harness.attack.registry)
    unlimited: bool = False

    @classmethod
    def of(cls, stall_timeout: float, timeout: float | None, units: int = 0, numel: int = 784) -> Budgets:
        """The budgets of a run with ``--stall-timeout`` and ``--timeout`` (None: derived, inf: none), an attack of
        ``units`` attack units, and images of ``numel`` pixels (before the attack is known: units 0)."""
        unlimited = timeout is not None and math.isinf(timeout)
        return cls(stall_timeout, max(1.0, numel / 784), units, unlimited)

    def _cap(self, seconds: float) -> float | None:
        return None if self.unlimited else seconds

    @property
    def load(self) -> float | None:
        return self._cap(self.stall)

    @property
    def check(self) -> float | None:
        return self._cap(10 * self.stall)

    def chunk(self, size: int) -> float | None:
        return self._cap(300 + 15 * self.units * self.scale * size)

    def explain(self, n_explain: int, suite: SuiteConfig | None = None) -> float | None:
        seconds = 600 + 10 * self.scale * n_explain
        if suite is not None and suite.reliability:  # reliability sends its scores only when all are computed
            from metrics.suite_reliability import ITERATIONS, N_IMAGES, PERTURBATIONS, RELIABILITY_METHODS

            metrics = len([p for p in suite.pairs() if p[0] == "reliability"])
            work = 4 * ITERATIONS * PERTURBATIONS * N_IMAGES * len(RELIABILITY_METHODS) * metrics
            seconds += self.scale * work
        return self._cap(seconds)

    def visualise(self, fv: FeatureVisConfig, num_classes: int) -> float | None:
        work = 2 * fv.n_inversion * fv.inversion_steps + fv.per_class * num_classes * fv.generation_steps
        return self._cap(600 + 0.02 * self.scale * work)

    def classify(self, size: int) -> float | None:
        return self._cap(self.stall + 300 + 0.5 * self.scale * size)

    def total(
        self,
        chunks: list[tuple[int, int]],
        suite: SuiteConfig | None,
        featurevis: FeatureVisConfig | None,
        num_classes: int,
    ) -> float | None:
        """The default wall-clock limit: every budget of the run, plus 600 s for the figures."""
        if self.unlimited:
            return None
        seconds = self.load + self.check + 600
        seconds += self.load  # the fresh worker's start
        seconds += sum(
            self.chunk(b - a)
            + self.classify(PROBES * (b - a))
            + 2 * self.classify(b - a)
            + self.classify(2 * (PROBES + 2) * (b - a))
            for a, b in chunks
        )
        if suite is not None:
            messages = len(suite.methods) + len(suite.controls) + len(suite.pairs())
            seconds += messages * self.explain(suite.n_explain, suite)
        if featurevis is not None:
            seconds += self.visualise(featurevis, num_classes)
        return seconds
