"""The per-example values a test compares, taken on a declared :class:`Basis`: normalised between each model's own
floor and ceiling (metrics.normalise; for the perturbation-curve metrics that have them) or raw, and on the images
every compared model classifies correctly (harness.report.rules) or on all the images they share.

A normalised value is ``n_i = (m_i - f_i) / mean_S(c - f)`` with S the selected images of that model, so a model
whose output merely moves less under any perturbation (e.g. a less confident one) is not scored lower for it; raw
values stay available as a sensitivity basis. Each model is normalised on the same image set S as the others. The
ceiling c is, per image, the best order found for that model: the stored occlusion ceiling raised to every order
scored on it (metrics.normalise.best_found; in a comparison, the methods and controls every compared model has), so
that no model's ceiling is one its own methods beat; occlusion's ceiling alone is a sensitivity basis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.report.entries import Entry
from harness.report.rules import correct_images
from harness.report.scores import Pair, Score
from metrics.bounds import BOUND_CEILING, BOUND_FLOOR
from metrics.normalise import best_found, normalised_score
from metrics.registry import HEADLINE_METHOD, METRICS, output_variant


@dataclass(frozen=True)
class Basis:
    """How a test's values are taken: ``normalised`` between each model's floor and ceiling where the metric has
    them, and ``correct_only`` on the images every compared model classifies correctly (image-paired metrics)."""

    normalised: bool = True
    correct_only: bool = True
    explained_output: bool = True  # curves scored on the output the methods explain (else on the other one)
    best_ceiling: bool = True  # the ceiling raised to the best order found (else occlusion's alone)

    @property
    def label(self) -> str:
        normalised = "normalised" if self.best_ceiling else "normalised to occlusion's ceiling"
        return ", ".join(
            (
                normalised if self.normalised else "raw scores",
                "correct images" if self.correct_only else "all images",
                "explained output" if self.explained_output else "the other output",
            )
        )


PRIMARY = Basis()
SENSITIVITY: dict[str, Basis] = {
    "raw scores": Basis(normalised=False),
    "all images": Basis(correct_only=False),
    "other output": Basis(explained_output=False),
    "occlusion ceiling": Basis(best_ceiling=False),
}
PLACEMENT_SENSITIVITY = ("raw scores", "occlusion ceiling")  # the bases that change how faithfulness is placed


def scored_metric(entries: list[Entry], metric: str, basis: Basis = PRIMARY) -> str | None:
    """The stored metric a basis reads for ``metric`` (a headline name): the curve metrics' variant scored on the
    output the entries' methods explain (or the other one); None when the entries explain different outputs."""
    outputs = {e.explained_output for e in entries}
    if len(outputs) > 1:
        return None
    (output,) = outputs or {"logit"}
    if not basis.explained_output:
        output = "probability" if output == "logit" else "logit"
    return output_variant(metric, output)


@dataclass(frozen=True)
class Selection:
    """``matrix``: ``(models, examples)`` values in the models' order on the shared ``keys``; ``normalised``: whether
    the values were normalised (False with ``note`` saying why when the basis asked for it but it was not possible)."""

    matrix: np.ndarray
    keys: tuple[object, ...]
    normalised: bool
    note: str = ""
    higher_is_better: bool = True  # the values' direction (normalised values are higher-is-better)

    @property
    def means(self) -> np.ndarray:
        """Each model's mean over the shared examples, ``(models,)``."""
        return self.matrix.mean(axis=1)


def normalisable(metric: str) -> bool:
    """Whether the metric has a floor and a ceiling per image (the perturbation-curve metrics)."""
    return bool(getattr(METRICS.get(metric), "normalisable", False))


def select(entries: list[Entry], pair: Pair, basis: Basis = PRIMARY) -> Selection | None:
    """The values of ``pair`` (a headline name; the stored variant is :func:`scored_metric`'s) for ``entries`` on the
    examples all of them have (None when a model lacks the score, the values cannot be paired, the entries explain
    different outputs, or fewer than 2 examples are shared)."""
    method, name = pair
    metric = scored_metric(entries, name, basis)
    if metric is None:
        return None
    pair = (method, metric)
    spec = METRICS.get(metric)
    scores = [e.scores.get(pair) for e in entries]
    if any(s is None or s.mean is None or not s.values for s in scores):
        return None
    keyed = [_keyed(s, positional=spec.paired_by == "image") for s in scores]
    if any(k is None for k in keyed):
        return None
    common = set(keyed[0])
    for k in keyed[1:]:
        common &= set(k)
    if basis.correct_only and spec.paired_by == "image":
        correct = correct_images(entries)
        if correct is not None:
            common &= correct
    keys = tuple(k for k in keyed[0] if k in common)
    if len(keys) < 2:
        return None
    raw = np.asarray([[k[key] for key in keys] for k in keyed], dtype=float)
    if not (basis.normalised and normalisable(metric)):
        return Selection(raw, keys, False, higher_is_better=spec.higher_is_better)
    rows, notes = [], []
    orders = ceiling_candidates(entries, metric) if basis.best_ceiling else ()
    for e, values in zip(entries, raw, strict=True):
        bounds = [_keyed(e.scores.get((b, metric)), positional=True) for b in (BOUND_FLOOR, BOUND_CEILING)]
        if any(b is None or any(key not in b for key in keys) for b in bounds):
            notes.append(f"{e.model} has no floor and ceiling stored for {metric} (rescore it)")
            continue
        floor = [bounds[0][key] for key in keys]
        ceiling = _ceiling(e, metric, bounds[1], keys, orders, spec.higher_is_better)
        result = normalised_score(values, floor, ceiling, higher_is_better=spec.higher_is_better)
        if result.reason:
            notes.append(f"{e.model}: {result.reason}")
            continue
        rows.append(result.per_image)
    if notes:
        return Selection(raw, keys, False, "not normalised: " + "; ".join(notes), spec.higher_is_better)
    matrix = np.asarray(rows)
    complete = ~np.isnan(matrix).any(axis=0)
    if complete.sum() < 2:
        return None
    return Selection(matrix[:, complete], tuple(k for k, ok in zip(keys, complete, strict=True) if ok), True)


def ceiling_candidates(entries: list[Entry], metric: str) -> tuple[str, ...]:
    """The orders that raise the ceiling of ``metric`` in a comparison of ``entries``: every method and control that
    each of them scored on it (sorted), the floor and ceiling rows aside."""
    common: set[str] | None = None
    for e in entries:
        methods = {m for m, name in e.scores if name == metric and m not in (BOUND_FLOOR, BOUND_CEILING)}
        common = methods if common is None else common & methods
    return tuple(sorted(common or ()))


def _ceiling(
    entry: Entry,
    metric: str,
    stored: dict[object, float],
    keys: Sequence[object],
    orders: Sequence[str],
    higher_is_better: bool,
) -> np.ndarray:
    """``entry``'s ceiling on ``keys``: the stored (occlusion) ceiling raised to the best of ``orders``' values."""
    rows = []
    for method in orders:
        values = _keyed(entry.scores.get((method, metric)), positional=True) or {}
        rows.append([values.get(key, np.nan) for key in keys])
    return best_found([stored[key] for key in keys], rows, higher_is_better=higher_is_better)


def own_normalised(entry: Entry, name: str, *, best_ceiling: bool = True) -> Score | None:
    """``entry``'s normalised score of the headline curve metric ``name`` (the variant scored on the output its
    methods explain) on all the images it scored, as a :class:`Score` (mean N, 95% bootstrap interval of the mean of
    its per-image values; ``na`` with the reason when N is undefined); None when a floor or ceiling is not stored.
    The ceiling is the best order found among occlusion's and every order the entry scored (``best_ceiling``; else
    occlusion's alone)."""
    from metrics.stats import bootstrap_interval

    metric = output_variant(name, entry.explained_output)
    method = METRICS.get(metric)
    values = _keyed(entry.scores.get((HEADLINE_METHOD, metric)), positional=True)
    bounds = [_keyed(entry.scores.get((b, metric)), positional=True) for b in (BOUND_FLOOR, BOUND_CEILING)]
    if values is None or any(b is None for b in bounds):
        return None
    keys = [k for k in values if all(k in b for b in bounds)]
    if len(keys) < 2:
        return None
    floor = [bounds[0][k] for k in keys]
    orders = ceiling_candidates([entry], metric) if best_ceiling else ()
    ceiling = _ceiling(entry, metric, bounds[1], keys, orders, method.higher_is_better)
    result = normalised_score([values[k] for k in keys], floor, ceiling, higher_is_better=method.higher_is_better)
    if result.reason:
        return Score(None, None, None, result.n, na=result.reason)
    per_image = result.per_image[~np.isnan(result.per_image)]
    low, high = bootstrap_interval(per_image)
    return Score(result.value, low, high, int(per_image.size), values=tuple(per_image), keys=None)


def normalised_by_run(entries: list[Entry], name: str) -> dict[str, Score]:
    """Each entry's :func:`own_normalised` score of ``name`` by run id (the entries with stored bounds; empty for a
    metric without a floor and ceiling): what the board's columns and scatter plots show for a curve metric."""
    if not normalisable(name):
        return {}
    return {e.run_id: n for e in entries if (n := own_normalised(e, name)) is not None}


def _keyed(score: Score | None, *, positional: bool) -> dict[object, float] | None:
    """A score's values by key (image index or composite cell); by position when it has no keys and ``positional``."""
    if score is None or not score.values:
        return None
    if score.keys is None:
        return dict(enumerate(score.values)) if positional else None
    return {_hashable(k): v for k, v in zip(score.keys, score.values, strict=True)}


def _hashable(key: object) -> object:
    return tuple(key) if isinstance(key, list) else key
