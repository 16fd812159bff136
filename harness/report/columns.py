"""The leaderboard's tables described once, column by column, for leaderboard.md and the HTML site: each
:class:`Column` has a header, its cell from a row (a :mod:`harness.report.cells` value), its sort order and the
tables it appears in. Adding a column to the board is one entry in :data:`MAIN` (plus its test).

Tables: :data:`MAIN` (measured models, one row per ranked entry: one attack protocol at one n,
harness.report.protocols), :data:`OTHER` (the board's other rows, badged with their attack and n),
:func:`reported_columns` (RobustBench's columns for entries reported elsewhere) and :func:`detail_columns` (every
score of every method, mean and interval). Each column's ``description`` says what it holds and which way is
better (the HTML site's tooltips).

One module because it is the one description of the board's columns: header, cell, sort order, tooltip and
the tables a column belongs to sit side by side, so a new column is one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from harness.report.board import Board
from harness.report.cells import Code, Figures, FlagMark, Link, Missing, NoteMark, Number, Text, Value
from harness.report.entries import Entry
from harness.report.notes import CONTROL_NOTE, SHARED_NAME_NOTE, na_note, reported_notes
from harness.report.protocols import protocol_of, ranked_protocol, split
from harness.report.scores import Pair, Score
from harness.report.values import own_normalised
from harness.store.robustbench import (
    CORRUPTION_COLUMNS,
    best_known,
    is_corruptions,
    paper_link,
    rank_key,
    two_decimals,
    unreliable_mark,
)
from metrics.registry import FEATUREVIS_METHOD, FEATUREVIS_SCORES, HEADLINE, METRICS

R = TypeVar("R")


@dataclass(frozen=True)
class Table:
    """What a table's cells may use beyond their row: the board, and whether run figures are linked (markdown: only
    when the leaderboard knows where run files live; the HTML site always has a Figures column)."""

    board: Board
    figures: bool = True


@dataclass(frozen=True)
class Column(Generic[R]):
    """One column: ``header``; ``value(row, table)``, its cell; ``descending``, whether the first click sorts it
    highest first (HTML; accuracies); ``shown(table)``, whether the table has it; ``description``, what it holds
    and which way is better (HTML tooltips); ``detail``, whether the HTML site's compact view hides it (shown on
    demand)."""

    header: str
    value: Callable[[R, Table], Value]
    descending: bool = False
    shown: Callable[[Table], bool] = lambda table: True
    description: str = ""
    detail: bool = False


@dataclass(frozen=True)
class Ranked(Generic[R]):
    """A row with its rank (1 = first)."""

    rank: int
    row: R


@dataclass(frozen=True)
class Detail:
    """A detail-table row: one method's scores on one entry."""

    entry: Entry
    method: str


def layout(columns: Sequence[Column[R]], rows: Sequence[R], table: Table) -> tuple[list[Column[R]], list[list[Value]]]:
    """The columns ``table`` has and each row's cells under them."""
    shown = [c for c in columns if c.shown(table)]
    return shown, [[c.value(row, table) for c in shown] for row in rows]


def label(metric: str) -> str:
    """A metric's column label with its direction, e.g. ``ABPC ↑``."""
    spec = METRICS.get(metric)
    return f"{spec.short} {spec.arrow}"


def describe(metric: str, method: str | None = None) -> str:
    """A metric's tooltip: what it measures, which way is better, and of which attributions.

    >>> describe("sparseness")
    'Gini: Gini index of |attributions| (Chalasani et al. 2020). ↑ higher is better.'
    """
    spec = METRICS.get(metric)
    better = "↑ higher is better" if spec.higher_is_better else "↓ lower is better"
    text = f"{spec.short}: {spec.description}. {better}."
    if method == FEATUREVIS_METHOD:
        return text + " Feature visualisation, scored with the reference encoder."
    return text + (f" Of {method} attributions." if method else "")


# --- cells ---------------------------------------------------------------------------------------------------------


def score_value(score: Score | None, *, interval: bool, informative: bool = True) -> Value:
    """A stored score: its mean (with the 95% interval when ``interval``; on hover otherwise), n/a with the reason
    as a note, or missing; † when it does not beat its controls."""
    if score is None:
        return Missing()
    if score.mean is None:
        return Text("n/a", sort="", marks=(NoteMark(na_note(score.na)),))
    shown = f"{score.mean:.3f}"
    if interval and score.low is not None:
        shown += f" [{score.low:.3f}, {score.high:.3f}]"
    tooltip = "" if score.low is None else f"95% interval [{score.low:.3f}, {score.high:.3f}], n={score.n}"
    marks = () if informative else (NoteMark(CONTROL_NOTE, "†"),)
    return Number(shown, score.mean, marks, tooltip)


def percent_value(value: Any) -> Number:
    """A RobustBench percentage field with two decimals (harness.store.robustbench.two_decimals)."""
    shown = two_decimals(value)
    return Number(shown, None if shown == "—" else float(shown))


def _reported_value(rep: dict[str, Any] | None) -> Value:
    """A measured model's reported clean / best known robust accuracy (RobustBench's two decimals), with the
    reported entry's notes."""
    if rep is None:
        return Missing()
    best = best_known(rep)
    shown = f"{two_decimals(rep.get('clean_acc'))} / {two_decimals(None if best is None else 100 * best)}"
    marks = tuple(NoteMark(note) for note in reported_notes(rep))
    return Number(shown, None if best is None else 100 * best, marks)


def _headline(pair: Pair) -> Column[Ranked[Entry]]:
    """A headline score's column; a curve metric's is its normalised score (between the model's own floor and
    ceiling, scored on the output its methods explain), or its raw score marked as such when no bounds are stored."""
    normalise = bool(getattr(METRICS.get(pair[1]), "normalisable", False))

    def value(r: Ranked[Entry], table: Table) -> Value:
        if normalise:
            score = own_normalised(r.row, pair[1])
            if score is not None:
                return score_value(score, interval=False)
            raw = score_value(r.row.scores.get(pair), interval=False)
            if isinstance(raw, Number):
                return Number(raw.shown, raw.sort, (NoteMark(RAW_NOTE, "raw"),), raw.tooltip)
            return raw
        score = r.row.scores.get(pair)
        scored = score is not None and score.mean is not None
        return score_value(score, interval=False, informative=not scored or table.board.informative(r.row.model, *pair))

    if normalise:
        spec = METRICS.get(pair[1])
        header = f"{spec.short} norm. ↑"
        description = (
            f"{spec.short}: {spec.description}; normalised between the model's own floor (0: a random order) and "
            "ceiling (1: per image the best order found for that model, among its occlusion orders and every method's "
            "and control's order scored on it), scored on the logit its methods explain; "
            f"of {pair[0]} attributions. ↑ higher is better. 'raw' marks a run without stored bounds."
        )
    else:
        header, description = label(pair[1]), describe(pair[1], pair[0])
    note = "" if pair[0] == FEATUREVIS_METHOD else " † marks a score that does not beat its bar (best model-free map)."
    return Column(header, value, description=description + note)


RAW_NOTE = (
    "raw: the run stores no floor and ceiling for this score (it predates them: `robint-bench run --rescore` adds "
    "them); shown raw, scored on the probability, not comparable with the normalised scores",
)


def _model_marks(e: Entry) -> tuple[FlagMark | NoteMark, ...]:
    """A run's flags, and a note when another model has runs under its name (an imported run says so in its cell:
    ``(imported)``, README "Security model")."""
    marks: list[FlagMark | NoteMark] = [FlagMark(f.get("code"), f.get("message")) for f in e.flags]
    if e.shared_name:
        marks.append(NoteMark(SHARED_NAME_NOTE))
    return tuple(marks)


def _percent_of(fraction: float) -> Number:
    return Number(f"{100 * fraction:.1f}", 100 * fraction)


def _robust(e: Entry) -> Number:
    lo, hi = e.robust_interval
    return Number(f"{100 * e.robust_acc:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]", 100 * e.robust_acc)


# --- the tables ----------------------------------------------------------------------------------------------------

MAIN: tuple[Column[Ranked[Entry]], ...] = (
    Column(
        "Rank",
        lambda r, t: Number(str(r.rank), r.rank),
        description="Rank by AutoAttack robust accuracy (then clean accuracy) among the rows of one attack protocol at "
        "one n: AutoAttack standard on the most test images, as RobustBench ranks.",
    ),
    Column(
        "Model",
        lambda r, t: Text(
            f"{r.row.model} (imported)" if r.row.imported else r.row.model, sort=r.row.model, marks=_model_marks(r.row)
        ),
        description="The model's name (its submission's METADATA); ⚠ marks a flag of its run.",
    ),
    Column(
        "Clean acc (%)",
        lambda r, t: _percent_of(r.row.clean_acc),
        descending=True,
        description="Accuracy on the first n clean test images. ↑ higher is better.",
    ),
    Column(
        "AA robust acc (%) [95% CI]",
        lambda r, t: _robust(r.row),
        descending=True,
        description="Accuracy under AutoAttack, every adversarial example verified inside the eps-ball and [0,1] and "
        "re-classified by the harness; 95% Wilson interval. ↑ higher is better.",
    ),
    Column(
        "n",
        lambda r, t: Number(str(r.row.n), r.row.n),
        descending=True,
        description="Test images evaluated (the first n, in order).",
        detail=True,
    ),
    Column(
        "Reported clean / robust (%)",
        lambda r, t: _reported_value(r.row.reported),
        descending=True,
        shown=lambda t: bool(t.board.reported),
        description="What the model's RobustBench model_info file reports: clean and best known robust accuracy.",
        detail=True,
    ),
    *(_headline(pair) for pair in HEADLINE),
    Column(
        "Attack",
        lambda r, t: Text(r.row.attack),
        description="The attack (--attack): AutoAttack standard, or a list of its sub-attacks.",
        detail=True,
    ),
    Column(
        "Training",
        lambda r, t: Text(r.row.training or "—"),
        description="The training method its METADATA states (standard, pgd-at, trades, fgsm-rs, ...).",
        detail=True,
    ),
    Column(
        "Date",
        lambda r, t: Text(r.row.created_at.strftime("%Y-%m-%d")),
        description="When the run started.",
        detail=True,
    ),
    Column(
        "Run", lambda r, t: Code(r.row.run_id), description="The run's id (robint-bench results --json).", detail=True
    ),
    Column(
        "Figures",
        lambda r, t: Figures(r.row.run_id, r.row.model),
        shown=lambda t: t.figures,
        description="The run's figures: attributions, adversarial examples, inversions, generations.",
        detail=True,
    ),
)
# The rows outside the ranked protocol: the same columns, a badge with the attack and n instead of a rank.
OTHER: tuple[Column[Ranked[Entry]], ...] = (
    Column(
        "Protocol",
        lambda r, t: Text(protocol_of(r.row).badge, sort=protocol_of(r.row).badge),
        description="The attack and n of this row: not ranked with rows of another protocol (their robust "
        "accuracies are not comparable).",
    ),
    *MAIN[1:],
)


def main_rows(board: Board) -> list[Ranked[Entry]]:
    """The board's rows of its ranked protocol (harness.report.protocols), ranked."""
    ranked, _ = split(board.entries)
    return [Ranked(rank, e) for rank, e in enumerate(ranked, start=1)]


def other_rows(board: Board) -> list[Ranked[Entry]]:
    """The board's rows of other protocols (another attack, or fewer examples), unranked (rank 0)."""
    _, others = split(board.entries)
    return [Ranked(0, e) for e in others]


def ranking_note(board: Board) -> str:
    """What the ranking holds and why the other rows are apart (empty when every row shares one protocol)."""
    protocol = ranked_protocol(board.entries)
    if protocol is None or not other_rows(board):
        return ""
    return (
        f"Ranked: the rows evaluated with {protocol.badge.replace(', n=', ' on the first ')} test images "
        "(RobustBench's rule: one attack protocol, the most examples). Rows evaluated with another attack or fewer "
        "images are listed apart, badged with their attack and n: their robust accuracies are not comparable with "
        "the ranked ones."
    )


def _stored(value: object) -> Text:
    """Stored text of a reported entry (markdown: one line, at most 1000 characters)."""
    return Text(value, limit=1000, collapse=True)


def _paper(rep: dict[str, Any]) -> Value:
    title = " ".join(str(rep.get("name") or "—").split())
    link = paper_link(rep)
    return _stored(title) if link is None else Link(title, link)


def _extra_data(rep: dict[str, Any]) -> Text:
    extra = rep.get("additional_data")
    return Text("—" if extra is None else ("yes" if extra else "no"))


def reported_columns(entries: list[dict[str, Any]]) -> list[Column[Ranked[dict[str, Any]]]]:
    """RobustBench's columns for reported entries: ranked by best known robust accuracy (``external`` when the file
    has one, else AutoAttack's) or by corruption accuracy, the paper linked, the entry's notes on its model id."""
    columns: list[Column[Ranked[dict[str, Any]]]] = [
        Column("Rank", lambda r, t: Number(str(r.rank), r.rank)),
        Column(
            "Model",
            lambda r, t: Text(
                r.row["model_id"],
                sort=r.row["model_id"],
                marks=tuple(NoteMark(note) for note in reported_notes(r.row)),
                limit=1000,
                collapse=True,
            ),
        ),
        Column("Paper", lambda r, t: _paper(r.row)),
        Column("Clean acc (%)", lambda r, t: percent_value(r.row.get("clean_acc")), descending=True),
    ]
    if any(is_corruptions(rep) for rep in entries):
        for key, name in CORRUPTION_COLUMNS:
            if any(rep.get(key) for rep in entries):
                higher = key in ("corruptions_acc", "corruptions_acc_3d")  # accuracies highest first, mCE lowest
                columns.append(Column(name, lambda r, t, key=key: percent_value(r.row.get(key)), descending=higher))
    else:
        columns += [
            Column("AA robust acc (%)", lambda r, t: percent_value(r.row.get("autoattack_acc")), descending=True),
            Column("Best known robust acc (%)", lambda r, t: _best_known(r.row), descending=True),
            # descending: "yes" (potentially unreliable) and "unknown" before "no"
            Column("AA eval. potentially unreliable", lambda r, t: Text(unreliable_mark(r.row)), descending=True),
        ]
    return columns + [
        Column("Extra data", lambda r, t: _extra_data(r.row)),
        Column("Architecture", lambda r, t: _stored(r.row.get("architecture") or "—")),
        Column("Venue", lambda r, t: _stored(r.row.get("venue") or "—")),
    ]


def _best_known(rep: dict[str, Any]) -> Number:
    best = best_known(rep)
    return percent_value(None if best is None else 100 * best)


def reported_rows(entries: list[dict[str, Any]]) -> list[Ranked[dict[str, Any]]]:
    """Reported entries in RobustBench's order (harness.store.robustbench.rank_key), ranked."""
    return [Ranked(rank, rep) for rank, rep in enumerate(sorted(entries, key=rank_key), start=1)]


def detail_metrics(board: Board, *, featurevis: bool) -> list[str]:
    """The metrics of a detail table (attribution or feature visualisation) that some entry has, in table order."""
    pairs = [pair for pair in board.detail_pairs if (pair[0] == FEATUREVIS_METHOD) == featurevis]
    order = FEATUREVIS_SCORES if featurevis else [n for n, spec in METRICS.items() if spec.stage == "attribution"]
    return [name for name in order if any(metric == name for _, metric in pairs)]


def detail_rows(board: Board, names: list[str], *, featurevis: bool) -> list[Detail]:
    """Per entry, per method of the table with a score among ``names``: one row."""
    pairs = [pair for pair in board.detail_pairs if (pair[0] == FEATUREVIS_METHOD) == featurevis]
    methods = list(dict.fromkeys(method for method, _ in pairs))
    return [
        Detail(e, method) for e in board.entries for method in methods if any((method, m) in e.scores for m in names)
    ]


def detail_columns(names: list[str]) -> list[Column[Detail]]:
    """Model, method, then each metric's mean [95% bootstrap interval]."""
    columns: list[Column[Detail]] = [
        Column("Model", lambda d, t: Text(d.entry.model), description="The model's name."),
        Column(
            "Method",
            lambda d, t: Text(d.method),
            description="The attribution method scored (control_random and control_input: the controls).",
        ),
    ]
    for name in names:
        columns.append(Column(label(name), lambda d, t, name=name: _detail_score(d, name), description=describe(name)))
    return columns


def _detail_score(d: Detail, metric: str) -> Value:
    return score_value(d.entry.scores.get((d.method, metric)), interval=True)
