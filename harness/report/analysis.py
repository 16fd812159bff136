"""The leaderboard's analysis as typed values: one :class:`Board` per data set x threat model x eps, with its ranked
entries, their scores' controls, the training recipes, the adversarially-trained-vs-standard comparisons, the
correlations across models and the dose-response across eps. Markdown (harness.report.markdown) and plots only
render these values; tests assert on them.

Statistics (README, "Robustness vs interpretability"): every comparison between models on the same images is
paired (per-image scores aligned by image index, GridPG by composite cell); recipes with several training seeds
are compared with a mixed-model t interval over seeds and images (``metrics.stats.recipe_difference``); rank
correlations across models use permutation tests (exact up to 8 models); p-values of one board's family of
comparisons (and, separately, of its correlations and of its dose-response tests) are Holm-adjusted, and verdicts
come from the adjusted p-values only.

Long because it is the one place every leaderboard number is computed (markdown and HTML only render it): entries,
controls, reliability, correlations, recipe comparisons and dose-response share the same paired alignment and Holm
families, which splitting would duplicate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from harness import store
from harness.store.robustbench import eps_section, is_corruptions, rank_key, reported_entries
from harness.threat import parse_eps
from metrics.registry import FEATUREVIS_METHOD, HEADLINE, HEADLINE_METRICS, METRICS
from metrics.stats import (
    dose_response_test,
    holm,
    paired_comparison,
    recipe_difference,
    spearman_permutation_test,
    wilson_interval,
)

ALPHA = 0.05
MIN_MODELS = 5  # with fewer models an exact two-sided rank test cannot reject at 5%
RELIABILITY_METHOD = "reliability"
CONTROL_METHODS = ("control_random", "control_input")
INCONCLUSIVE = "inconclusive (interval contains 0)"
EQUIVALENCE = 0.1  # a score within this share of the controls' gap of a control matches it


@dataclass(frozen=True)
class Score:
    """One stored score of a run: mean, 95% interval, n, per-example values and what each value belongs to
    (``keys``: image indices, or GridPG composite cells; None for runs stored before keys were recorded)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int
    na: str | None = None
    values: tuple[float, ...] = ()
    keys: tuple[Any, ...] | None = None
    details: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Entry:
    """One model's run on a board (its completed run with the most examples)."""

    run_id: str
    model: str
    n: int
    attack: str
    clean_acc: float
    robust_acc: float
    training: str
    created_at: datetime
    flags: tuple[dict[str, str], ...]
    scores: dict[tuple[str, str], Score]
    reported: dict[str, Any] | None = None
    recipe: str = ""
    eps_trained: float | None = None
    seed: int | None = None
    malformed: str | None = None  # why a stored row could not be read completely
    architecture: str = ""
    threat_trained: str = ""  # the training threat model (adversarial training only)
    epochs: int | None = None

    @property
    def robust_interval(self) -> tuple[float, float]:
        """95% Wilson interval of the robust accuracy."""
        return wilson_interval(round(self.robust_acc * self.n), self.n)

    def degenerate(self, method: str) -> dict[str, int]:
        """How many of ``method``'s maps were all-zero, constant or non-finite (from any of its scores)."""
        for (m, _), score in self.scores.items():
            if m == method and "degenerate" in score.details:
                return dict(score.details["degenerate"])
        return {}


@dataclass(frozen=True)
class ControlCheck:
    """A method's score minus a control's, paired on the same images: does the method beat the control?"""

    model: str
    method: str
    metric: str
    control: str
    diff: float
    low: float
    high: float
    beats: bool  # better than the control by more than the equivalence margin (paired 95% interval)
    matches: bool  # within the equivalence margin of the control (paired 95% interval)


@dataclass(frozen=True)
class Correlation:
    """Spearman correlation across the board's models between robust accuracy and one score."""

    method: str
    metric: str
    n_models: int
    rho: float
    p_value: float
    p_adjusted: float
    verdict: str


@dataclass(frozen=True)
class Comparison:
    """An adversarially trained recipe minus the standard one on one score (paired on the same images).

    ``kind``: "paired" (one seed each: paired bootstrap interval, sign-flip test), "recipes" (seeds x images:
    mixed-model t interval and test), "intervals" (set-level scores such as FID with one seed: stored intervals
    compared, no p-value). ``informative`` is False when a model's score does not beat its controls.
    """

    model: str  # the adversarially trained recipe's label (its model's name when it has one seed)
    method: str
    metric: str
    diff: float
    low: float
    high: float
    verdict: str
    kind: str = "paired"
    p_value: float = math.nan
    p_adjusted: float = math.nan
    n: int = 0
    seeds: tuple[int, int] = (1, 1)
    informative: bool = True
    intervals: tuple[tuple[float | None, float | None], tuple[float | None, float | None]] | None = None
    note: str = ""
    baseline: str = ""  # the standard recipe it is compared with (same architecture)

    @property
    def per_example(self) -> bool:
        return self.kind != "intervals"


@dataclass(frozen=True)
class DoseResponse:
    """Spearman correlation between the training eps and a score across the models of one training recipe that
    differ only in eps (method, threat model, architecture, epochs; standard training of the same architecture
    counted as eps 0), with a permutation p-value."""

    method: str
    metric: str
    n_models: int
    eps_values: tuple[float, ...]
    rho: float
    p_value: float
    p_adjusted: float
    verdict: str


@dataclass(frozen=True)
class Reliability:
    """A metric's MetaQuantus reliability on one model (noise resilience, adversary reactivity, MC)."""

    model: str
    metric: str
    mc: float
    noise_resilience: float
    adversary_reactivity: float
    reliable: bool


@dataclass
class Recipe:
    """Models trained with one recipe (method, threat model, eps, architecture, epochs), one per seed."""

    label: str
    training: str
    eps: float | None
    entries: list[Entry]
    architecture: str = ""


@dataclass
class Board:
    """One leaderboard section: a data set, threat model and eps."""

    dataset: str
    threat_model: str
    eps_text: str
    entries: list[Entry] = field(default_factory=list)
    reported_only: list[dict[str, Any]] = field(default_factory=list)  # reported here, not measured
    reported: list[dict[str, Any]] = field(default_factory=list)  # every reported entry of this setting
    recipes: list[Recipe] = field(default_factory=list)
    controls: list[ControlCheck] = field(default_factory=list)
    correlations: list[Correlation] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    dose_response: list[DoseResponse] = field(default_factory=list)
    reliability: list[Reliability] = field(default_factory=list)
    uncompared: list[str] = field(default_factory=list)  # robust recipes without one standard baseline, and why
    standard_model: str | None = None  # the standard baseline's label (one baseline), or what each row is compared with

    @property
    def detail_pairs(self) -> list[tuple[str, str]]:
        """Every (method, metric) some entry has, sorted (reliability and controls have their own sections)."""
        return sorted({key for e in self.entries for key in e.scores if key[0] != RELIABILITY_METHOD})

    def informative(self, model: str, method: str, metric: str) -> bool:
        """Whether ``model``'s score beats every control the metric must beat (True when none was scored)."""
        spec = METRICS.get(metric)
        checks = [c for c in self.controls if (c.model, c.method, c.metric) == (model, method, metric)]
        return all(c.beats for c in checks if c.control in spec.controls)

    def reliable(self, metric: str) -> bool | None:
        """Reliable on every model that measured it (None when none did)."""
        found = [r.reliable for r in self.reliability if r.metric == metric]
        return all(found) if found else None


def verdict(direction: int, higher_is_better: bool, inconclusive: str = INCONCLUSIVE) -> str:
    """The claim's verdict from the sign of an effect (0: not established) and the metric's direction.

    >>> verdict(+1, higher_is_better=True), verdict(+1, higher_is_better=False), verdict(0, True)
    ('yes', 'no (the opposite)', 'inconclusive (interval contains 0)')
    """
    if direction == 0:
        return inconclusive
    return "yes" if (direction > 0) == higher_is_better else "no (the opposite)"


def interval_direction(low: float, high: float) -> int:
    """+1 / -1 when the interval excludes 0 above / below it, else 0."""
    return 0 if low <= 0 <= high else (1 if low > 0 else -1)


def analyse(s: Session) -> list[Board]:
    """Every board of the leaderboard, from the completed runs and the imported reported entries."""
    return build_boards(runs_frame(s), reported_entries(s))


# --- reading the database --------------------------------------------------------------------------------------


def runs_frame(s: Session) -> pd.DataFrame:
    """One row per completed run with the columns the boards need (``scores``: {(method, metric): Score}); a row
    that cannot be read completely is kept, with what could be read and the reason (``malformed``)."""
    rows = []
    for run in store.completed_runs(s):
        info = run.model.info if isinstance(run.model.info, dict) else {}
        training = info.get("training")
        training = training if isinstance(training, dict) else {}
        problems = []
        scores = {}
        for m in run.metrics:
            try:
                scores[(m.method, m.metric)] = _score(m)
            except (TypeError, ValueError) as exc:
                problems.append(f"score {m.method}/{m.metric}: {type(exc).__name__}")
        method = training.get("method", "")
        if not isinstance(method, str):
            problems.append(f"training method {type(method).__name__}")
            method = ""
        rows.append(
            {
                "run_id": run.id,
                "model": str(run.model.name),
                "identity": run.model.weights_sha256 or run.model.file_sha256,
                "dataset": run.dataset,
                "threat_model": run.threat_model,
                "eps_text": run.eps_text,
                "eps": run.eps,
                "n": run.n_examples,
                "attack": run.attack,
                "clean_acc": run.clean_acc,
                "robust_acc": run.robust_acc,
                "training": method,
                "recipe": _recipe_label(method, training, info),
                "eps_trained": _number(training.get("eps")),
                "seed": training.get("seed") if isinstance(training.get("seed"), int) else None,
                "architecture": str(info.get("architecture") or ""),
                "threat_trained": str(training.get("threat_model") or "") if method != "standard" else "",
                "epochs": training.get("epochs") if isinstance(training.get("epochs"), int) else None,
                "created_at": run.created_at,
                "scores": scores,
                "flags": tuple(f for f in (run.flags or []) if isinstance(f, dict)),
                "malformed": "; ".join(problems) or None,
            }
        )
    return pd.DataFrame(rows)


def _number(value: Any) -> float | None:
    try:
        return parse_eps(str(value))[0] if value is not None else None
    except Exception:  # noqa: BLE001  (a stored value that is not an eps)
        return None


def _recipe_label(method: str, training: dict[str, Any], info: dict[str, Any]) -> str:
    """``method threat eps architecture epochs`` (the seed excluded): models sharing it replicate a recipe."""
    if not method:
        return ""
    if method == "standard":
        parts = [method]
    else:
        parts = [method, str(training.get("threat_model") or ""), str(training.get("eps") or "")]
    parts += [str(info.get("architecture") or ""), f"{training.get('epochs')}ep" if training.get("epochs") else ""]
    return " ".join(p for p in parts if p)


def _score(m: store.MetricRecord) -> Score:
    details = m.details if isinstance(m.details, dict) else {}
    keys = details.get("index", details.get("rows"))
    return Score(
        mean=None if m.mean is None else float(m.mean),
        low=m.ci_low,
        high=m.ci_high,
        n=int(m.n),
        na=details.get("not_applicable"),
        values=tuple(float(v) for v in (m.values or [])),
        keys=tuple(keys) if isinstance(keys, list) and len(keys) == len(m.values or []) else None,
        details=details,
    )


def select_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Per table and model name: the newest model version, then its run with the largest n (latest wins)."""
    if frame.empty:
        return frame
    keys = ["dataset", "threat_model", "eps_text", "model"]
    newest = frame.groupby([*keys, "identity"])["created_at"].max().reset_index()
    newest = newest.sort_values("created_at").groupby(keys).tail(1)[[*keys, "identity"]]
    frame = frame.merge(newest, on=[*keys, "identity"])
    frame = frame.sort_values(["n", "created_at"]).groupby(keys).tail(1)
    return frame.sort_values(
        ["dataset", "threat_model", "eps", "robust_acc", "clean_acc"], ascending=[True, True, True, False, False]
    )


def build_boards(frame: pd.DataFrame, reported: list[dict[str, Any]]) -> list[Board]:
    """Boards in order (measured settings first, then settings only reported entries have, sorted)."""
    columns = ["dataset", "threat_model", "eps_text"]
    measured = [] if not len(frame) else list(frame[columns].drop_duplicates().itertuples(index=False, name=None))
    placed = place_reported(reported, measured)
    boards: list[Board] = []
    if len(frame):
        for (dataset, threat, eps_text), table in select_rows(frame).groupby(columns, sort=False):
            mine = [r for r in placed if r["section"] == (dataset, threat, eps_text)]
            boards.append(_board(dataset, threat, eps_text, table, mine))
    known = {_key(b) for b in boards}
    extra = sorted({r["section"] for r in placed} - known, key=_section_order)
    boards += [Board(*key) for key in extra]  # reported-only settings still get a section
    for board in boards:
        board.reported = sorted((r for r in placed if r["section"] == _key(board)), key=rank_key)
        if not board.entries:
            board.reported_only = list(board.reported)
    return boards


def place_reported(reported: list[dict[str, Any]], measured: list[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Each reported entry with its ``section`` (data set, threat model, eps text) and ``eps_note``.

    Corruptions entries share one section per data set (eps ""). An eps equal to a measured or reported one joins
    it; a decimal within rounding of a k/255 fraction joins that fraction's section with a note (RobustBench lists
    0.031 under 8/255); see harness.store.robustbench.eps_section.
    """
    texts: dict[tuple[str, str], list[str]] = {}
    for dataset, threat, eps_text in measured:
        texts.setdefault((dataset, threat), []).append(eps_text)
    for rep in reported:
        if not is_corruptions(rep):
            texts.setdefault((rep["dataset"], rep["threat_model"]), []).append(str(rep["eps"]).strip())
    measured_texts = {m[2] for m in measured}
    out = []
    for rep in reported:
        if is_corruptions(rep):
            section, note = "", None
        else:
            group = texts[(rep["dataset"], rep["threat_model"])]
            candidates = [t for t in dict.fromkeys(group) if "/" in t or t in measured_texts]
            section, note = eps_section(rep["eps"], candidates)
        out.append({**rep, "section": (rep["dataset"], rep["threat_model"], section), "eps_note": note})
    return out


def _section_order(key: tuple[str, str, str]) -> tuple[str, int, float]:
    threat_order = {"Linf": 0, "L2": 1, "corruptions": 2}
    return key[0], threat_order.get(key[1], 3), parse_eps(key[2])[0] if key[2] else 0.0


def _key(board: Board) -> tuple[str, str, str]:
    return board.dataset, board.threat_model, board.eps_text


def _board(dataset: str, threat: str, eps_text: str, table: pd.DataFrame, reported: list[dict[str, Any]]) -> Board:
    mine = {r["model_id"]: r for r in reported}
    entries = [
        Entry(
            run_id=row.run_id,
            model=row.model,
            n=row.n,
            attack=row.attack,
            clean_acc=row.clean_acc,
            robust_acc=row.robust_acc,
            training=row.training,
            created_at=row.created_at,
            flags=row.flags,
            scores=row.scores,
            reported=mine.get(row.model),
            recipe=row.recipe,
            eps_trained=row.eps_trained,
            seed=row.seed,
            malformed=row.malformed,
            architecture=row.architecture,
            threat_trained=row.threat_trained,
            epochs=row.epochs,
        )
        for row in table.itertuples(index=False)
    ]
    measured = {e.model for e in entries}
    others = sorted((r for r in mine.values() if r["model_id"] not in measured), key=rank_key)
    board = Board(dataset, threat, eps_text, entries, others)
    board.recipes = recipes(entries)
    board.controls = control_checks(entries)
    board.reliability = reliability(entries)
    board.correlations = correlations(entries, board)
    board.standard_model, board.comparisons = versus_standard(board)
    board.uncompared = unmatched_recipes(board)
    board.dose_response = dose_response(board)
    return board


# --- controls and reliability -----------------------------------------------------------------------------------


def aligned(a: Score, b: Score) -> tuple[np.ndarray, np.ndarray] | None:
    """The per-example values of two scores on the examples both have (by key), or None when they cannot be
    paired (keys missing and lengths differ)."""
    if a.keys is None or b.keys is None:
        if a.keys is None and b.keys is None and len(a.values) == len(b.values):
            return np.asarray(a.values), np.asarray(b.values)
        return None
    where = {k: i for i, k in enumerate(b.keys)}
    common = [(i, where[k]) for i, k in enumerate(a.keys) if k in where]
    return np.asarray([a.values[i] for i, _ in common]), np.asarray([b.values[j] for _, j in common])


def control_checks(entries: list[Entry]) -> list[ControlCheck]:
    """Each headline score of each real method against the run's controls, paired on the same images.

    ``beats``: the paired 95% interval of (method − control) lies beyond ``EQUIVALENCE`` times the gap between the
    two controls' means, in the metric's better direction. ``matches``: the interval lies within that margin of 0
    (equivalence: e.g. gradient x input against the input control, whose difference on Fashion-MNIST is 0.3% of
    the mass ratio yet, with 100 paired images, significant).
    """
    out = []
    for e in entries:
        for (method, metric), score in e.scores.items():
            if method in (*CONTROL_METHODS, FEATUREVIS_METHOD, RELIABILITY_METHOD) or metric not in HEADLINE_METRICS:
                continue
            refs = {c: e.scores.get((c, metric)) for c in CONTROL_METHODS}
            means = [r.mean for r in refs.values() if r is not None and r.mean is not None]
            margin = EQUIVALENCE * abs(means[0] - means[1]) if len(means) == 2 else 0.0
            higher = METRICS.get(metric).higher_is_better
            for control, ref in refs.items():
                pair = None if ref is None or score.mean is None or ref.mean is None else aligned(score, ref)
                if pair is None or len(pair[0]) < 2:
                    continue
                r = paired_comparison(*pair)
                better_lo = r.lo if higher else -r.hi  # lower bound of the improvement over the control
                matches = -margin <= r.lo and r.hi <= margin
                out.append(
                    ControlCheck(e.model, method, metric, control, r.diff, r.lo, r.hi, better_lo > margin, matches)
                )
    return out


def reliability(entries: list[Entry]) -> list[Reliability]:
    """The MetaQuantus reliability scores stored on the board's runs (``run --reliability``)."""
    out = []
    for e in entries:
        for (method, metric), score in e.scores.items():
            d = score.details
            if method == RELIABILITY_METHOD and score.mean is not None and "noise_resilience" in d:
                out.append(
                    Reliability(
                        e.model,
                        metric,
                        score.mean,
                        d["noise_resilience"],
                        d["adversary_reactivity"],
                        bool(d.get("reliable")),
                    )
                )
    return out


# --- recipes, comparisons, correlations, dose-response ----------------------------------------------------------


def recipes(entries: list[Entry]) -> list[Recipe]:
    """The board's models grouped by training recipe (models without a recipe stand alone)."""
    groups: dict[str, Recipe] = {}
    for e in entries:
        label = e.recipe or e.model
        groups.setdefault(label, Recipe(label, e.training, e.eps_trained, [], e.architecture)).entries.append(e)
    return list(groups.values())


def _informative(board: Board, entries: list[Entry], pair: tuple[str, str]) -> bool:
    return all(board.informative(e.model, *pair) for e in entries)


def versus_standard(board: Board) -> tuple[str | None, list[Comparison]]:
    """Each adversarially trained recipe minus the standard recipe of the same architecture on every headline score
    (paired on the same images), with Holm-adjusted p-values over the board's family. A recipe whose architecture
    has no standard recipe, or several (e.g. different epochs), is not compared; the label returned names the one
    baseline, or says that each row has its own."""
    robust = [r for r in board.recipes if r.training not in ("", "standard")]
    matched = [(r, bases[0]) for r in robust if len(bases := _baselines(board, r)) == 1]
    if not matched:
        return None, []
    out = [c for r, base in matched for pair in HEADLINE if (c := _compare(board, r, base, pair)) is not None]
    adjusted = holm([c.p_value if c.informative else math.nan for c in out]) if out else []
    final = []
    for c, p_adj in zip(out, adjusted, strict=True):
        higher = METRICS.get(c.metric).higher_is_better
        if c.kind == "intervals" or not c.informative:
            final.append(c)
            continue
        direction = 0 if not p_adj < ALPHA else (1 if c.diff > 0 else -1)
        text = verdict(direction, higher, f"inconclusive (adjusted p = {p_adj:.2g})")
        final.append(_replace(c, p_adjusted=float(p_adj), verdict=text))
    used = {id(base): base for _, base in matched}
    if len(used) == 1:
        (base,) = used.values()
        return _name(base), final
    return "standard training of the same architecture", final


def unmatched_recipes(board: Board) -> list[str]:
    """The adversarially trained recipes :func:`versus_standard` leaves out, each with the reason."""
    out = []
    for r in board.recipes:
        if r.training in ("", "standard"):
            continue
        n = len(_baselines(board, r))
        if n != 1:
            arch = r.architecture or "unrecorded"
            out.append(
                f"{_name(r)}: {'no' if n == 0 else n} standard recipe{'s' if n > 1 else ''} of architecture {arch}"
            )
    return out


def _baselines(board: Board, recipe: Recipe) -> list[Recipe]:
    """The standard recipes of ``recipe``'s architecture (its baseline when there is exactly one)."""
    return [b for b in board.recipes if b.training == "standard" and b.architecture == recipe.architecture]


def _name(recipe: Recipe) -> str:
    """A recipe's model name when it has one seed, else its label."""
    return recipe.entries[0].model if len(recipe.entries) == 1 else recipe.label


def _span(scores: list[Score]) -> tuple[float, float] | None:
    """From the lowest lower to the highest upper bound of the stored intervals of a recipe's seeds."""
    if any(s.low is None or s.high is None for s in scores):
        return None
    return min(s.low for s in scores), max(s.high for s in scores)


def _replace(c: Comparison, **changes: Any) -> Comparison:
    from dataclasses import replace

    return replace(c, **changes)


def _compare(board: Board, robust: Recipe, base: Recipe, pair: tuple[str, str]) -> Comparison | None:
    models = [*robust.entries, *base.entries]
    scores = [e.scores.get(pair) for e in models]
    if any(s is None or s.mean is None for s in scores):
        return None
    label, baseline = _name(robust), _name(base)
    seeds = (len(robust.entries), len(base.entries))
    informative = _informative(board, models, pair)
    note = "" if informative else "a model's score does not beat its controls"
    higher = METRICS.get(pair[1]).higher_is_better
    if all(s.n <= 1 for s in scores):  # set-level (FID): one value per run
        if seeds[0] >= 2 and seeds[1] >= 2:  # one value per seed: Welch's t test over seeds
            from scipy.stats import ttest_ind

            a = [s.values[0] for s in scores[: seeds[0]]]
            b = [s.values[0] for s in scores[seeds[0] :]]
            test = ttest_ind(a, b, equal_var=False)
            lo, hi = test.confidence_interval(0.95)
            diff = float(np.mean(a) - np.mean(b))
            return Comparison(
                label,
                *pair,
                diff,
                float(lo),
                float(hi),
                "",
                "recipes",
                float(test.pvalue),
                n=1,
                seeds=seeds,
                baseline=baseline,
                informative=informative,
                note=note,
            )
        # fewer than two seeds on a side: each recipe's span of its seeds' intervals; apart only if the spans are
        mine, theirs = _span(scores[: seeds[0]]), _span(scores[seeds[0] :])
        diff = float(np.mean([s.mean for s in scores[: seeds[0]]]) - np.mean([s.mean for s in scores[seeds[0] :]]))
        apart = None not in (mine, theirs) and (mine[1] < theirs[0] or mine[0] > theirs[1])
        direction = (1 if diff > 0 else -1) if apart else 0
        text = verdict(direction, higher, "inconclusive (intervals overlap)")
        intervals = (mine or (None, None), theirs or (None, None))
        return Comparison(
            label,
            *pair,
            diff,
            math.nan,
            math.nan,
            text,
            "intervals",
            seeds=seeds,
            baseline=baseline,
            informative=informative,
            intervals=intervals,
            note=note,
        )
    shared_rows = METRICS.get(pair[1]).paired_by == "image" or all(s.keys is not None for s in scores)
    matrix = _common_matrix(scores) if shared_rows else None
    if matrix is None or matrix.shape[1] < 2:
        return Comparison(
            label,
            *pair,
            math.nan,
            math.nan,
            math.nan,
            "n/a (no examples scored by both)",
            "paired",
            seeds=seeds,
            baseline=baseline,
            informative=False,
            note="the models were scored on different examples",
        )
    a, b = matrix[: seeds[0]], matrix[seeds[0] :]
    if seeds[0] >= 2 and seeds[1] >= 2:
        r = recipe_difference(a, b)
        diff, lo, hi, p, kind = r.diff, r.lo, r.hi, r.p_value, "recipes"
    else:
        res = paired_comparison(a.mean(0), b.mean(0))
        diff, lo, hi, p, kind = res.diff, res.lo, res.hi, res.p_value, "paired"
        if max(seeds) > 1:
            note = (note + "; " if note else "") + "one recipe has a single seed: seed-to-seed spread not included"
    if not informative:
        return Comparison(
            label,
            *pair,
            diff,
            lo,
            hi,
            "not informative (does not beat its controls)",
            kind,
            p,
            n=matrix.shape[1],
            seeds=seeds,
            baseline=baseline,
            informative=False,
            note=note,
        )
    return Comparison(
        label, *pair, diff, lo, hi, "", kind, p, n=matrix.shape[1], seeds=seeds, note=note, baseline=baseline
    )


def _common_matrix(scores: list[Score]) -> np.ndarray | None:
    """``(models, examples)`` values on the examples every model has (by key; by position for keyless runs)."""
    if any(s.keys is None for s in scores):
        if all(s.keys is None for s in scores) and len({len(s.values) for s in scores}) == 1:
            return np.asarray([s.values for s in scores])
        return None
    common = set(scores[0].keys)
    for s in scores[1:]:
        common &= set(s.keys)
    order = [k for k in scores[0].keys if k in common]
    return np.asarray([[dict(zip(s.keys, s.values, strict=True))[k] for k in order] for s in scores])


def correlations(entries: list[Entry], board: Board) -> list[Correlation]:
    """Spearman correlation across models between robust accuracy and each headline score (every method the
    entries have; scores that do not beat their controls left out), exact permutation p-values, Holm-adjusted
    over the board's correlations."""
    methods = list(
        dict.fromkeys(m for e in entries for m, _ in e.scores if m not in (*CONTROL_METHODS, RELIABILITY_METHOD))
    )
    combos = [(m, name) for m in methods if m != FEATUREVIS_METHOD for name in HEADLINE_METRICS]
    combos += [(method, name) for method, name in HEADLINE if method == FEATUREVIS_METHOD and method in methods]
    raw = []
    for method, name in combos:
        pairs = [
            (e.robust_acc, e.scores[(method, name)].mean)
            for e in entries
            if (method, name) in e.scores
            and e.scores[(method, name)].mean is not None
            and board.informative(e.model, method, name)
        ]
        if not pairs:
            continue
        x, y = [a for a, _ in pairs], [b for _, b in pairs]
        if len(pairs) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
            raw.append((method, name, len(pairs), math.nan, math.nan))
            continue
        rho, p = spearman_permutation_test(x, y, alternative="two-sided")
        raw.append((method, name, len(pairs), rho, p))
    adjusted = holm([r[4] for r in raw]) if raw else []
    out = []
    for (method, name, n, rho, p), p_adj in zip(raw, adjusted, strict=True):
        out.append(Correlation(method, name, n, rho, p, float(p_adj), _correlation_verdict(rho, p_adj, name, n)))
    return out


def _correlation_verdict(rho: float, p_adjusted: float, metric: str, n: int) -> str:
    if n < MIN_MODELS:
        return f"inconclusive (n={n} model{'s' if n != 1 else ''})"
    if math.isnan(rho):
        return "inconclusive (no variation)"
    if not p_adjusted < ALPHA:
        return f"inconclusive (adjusted p = {p_adjusted:.2g})"
    return verdict(1 if rho > 0 else -1, METRICS.get(metric).higher_is_better)


def dose_response(board: Board) -> list[DoseResponse]:
    """Per family of models that differ only in training eps (same method, training threat model, architecture and
    epochs; standard training of the same architecture counted as eps 0) with at least 3 distinct eps on the
    board: Spearman correlation between eps and each headline score across the models (scores that do not beat
    their controls left out), exact permutation test, Holm-adjusted over the board's dose-response tests. Eps of
    different threat models are never mixed."""
    raw = []
    adversarial = [e for e in board.entries if e.training not in ("", "standard") and e.eps_trained is not None]
    for key in dict.fromkeys((e.training, e.threat_trained, e.architecture, e.epochs) for e in adversarial):
        standard = [e for e in board.entries if e.training == "standard" and e.architecture == key[2]]
        models = standard + [e for e in adversarial if (e.training, e.threat_trained, e.architecture, e.epochs) == key]
        eps = [0.0 if e.training == "standard" else float(e.eps_trained) for e in models]
        method = " ".join(str(p) for p in (key[0], key[1], key[2], f"{key[3]}ep" if key[3] else "") if p)
        if len(set(eps)) < 3:
            continue
        for pair in HEADLINE:
            kept = [
                (x, e.scores[pair].mean)
                for x, e in zip(eps, models, strict=True)
                if pair in e.scores and e.scores[pair].mean is not None and board.informative(e.model, *pair)
            ]
            if len({x for x, _ in kept}) < 3 or np.ptp([v for _, v in kept]) == 0:
                continue
            rho, p = dose_response_test([x for x, _ in kept], [v for _, v in kept], alternative="two-sided")
            raw.append((method, pair[1], pair[0], len(kept), tuple(sorted({x for x, _ in kept})), rho, p))
    adjusted = holm([r[6] for r in raw]) if raw else []
    out = []
    for (method, metric, source, n, eps_values, rho, p), p_adj in zip(raw, adjusted, strict=True):
        direction = 0 if not p_adj < ALPHA else (1 if rho > 0 else -1)
        text = verdict(direction, METRICS.get(metric).higher_is_better, f"inconclusive (adjusted p = {p_adj:.2g})")
        out.append(DoseResponse(f"{method} ({source})", metric, n, eps_values, rho, p, float(p_adj), text))
    return out
