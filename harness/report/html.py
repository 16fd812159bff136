"""The leaderboard as a static HTML site (``robint-bench leaderboard --html DIR``), rendered from the same analysis
values as leaderboard.md (harness.report.analysis).

``DIR/index.html`` lists one page per data set and threat model (``DIR/<dataset>_<threat model>.html``); each page
holds that setting's boards (one per eps; corruptions have one): a search box and filters (model, training recipe,
attack) for every table of the page, the ranked table (one attack protocol at one n: harness.report.protocols),
compact (the headline columns; the others on demand), the rows of other protocols apart with a badge, the reported
entries, an interactive scatter of robust accuracy against a chosen headline score (inline SVG:
harness.report.scatter_svg), the detail and analysis tables folded, and the notes. Column headers explain their
metric and its arrow on hover (the column descriptions of harness.report.columns); a cell's marks († and notes,
flags) sit beside its value, their text on hover. Tables sort (click or Enter on a header), filter and page
(``assets/leaderboard.js``). Each measured row's model links to its run page (harness.report.html_runs: numbers,
settings, versions, flags, figures). Everything the site needs is inside DIR: no server, no network, no CDN. Every
stored string is HTML-escaped; only http(s) paper links become links.

The analysis tables (controls, correlations, comparisons, dose-response) are small functions rendering the board's
values: :func:`controls_table`, :func:`correlation_table`, :func:`versus_table`, :func:`dose_table`.

One module because it writes one site: the pages share the page frame, the assets and the board's tables (the
run pages, the scatter plot and the protocol split live in their own modules).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from harness import __version__, store
from harness.report import columns
from harness.report.analysis import analyse
from harness.report.board import Board
from harness.report.cells import Code, Figures, FlagMark, Link, Mark, Missing, Number, Text, Value
from harness.report.columns import Column, Table, describe, label
from harness.report.html_base import RUN_ID, Cell, document, esc, number, slug, table, text
from harness.report.html_runs import write_run_page
from harness.report.notes import Notes, plain_note
from harness.report.protocols import ranked_protocol
from harness.report.runpage import RunPage, run_page
from harness.report.scatter_svg import Point, scatter_svg
from harness.report.values import normalised_by_run
from harness.store.files import files_root, write_text_atomic
from harness.store.robustbench import CORRUPTIONS
from metrics.registry import FEATUREVIS_METHOD, HEADLINE, HEADLINE_METHOD, METRICS

R = TypeVar("R")

ASSETS = ("leaderboard.css", "leaderboard.js")


@dataclass
class Site:
    """What :func:`write_site` wrote: the index page, and one warning per problem a reader should know about
    (figures that are missing)."""

    index: Path
    warnings: list[str] = field(default_factory=list)


def write_html_leaderboard(db: str, out_dir: Path, *, progress: bool = False) -> Site:
    """Write the site for the database at ``db`` into ``out_dir`` (``progress``: a bar over its pages on stderr).
    Figures come from the database's own files (``runs/<run id>/`` beside a SQLite file) and are copied into the
    site; a run whose figures are missing is a warning."""
    root = files_root(db)
    runs_root = None if root is None else root / "runs"
    with store.transaction(store.open_database(db, create=False)) as s:
        boards = analyse(s)
        ids = {e.run_id for b in boards for e in b.entries}
        pages = {run.id: run_page(run, runs_root) for run in store.completed_runs(s) if run.id in ids}
    site = write_site(boards, Path(out_dir), pages=pages, progress=progress)
    if root is None and pages:
        site.warnings.insert(
            0,
            f"{len(pages)} run(s) have no figures: the database is not a SQLite file, and figures are written beside "
            "a SQLite database only",
        )
    return site


def write_site(
    boards: list[Board], out_dir: Path, *, pages: dict[str, RunPage] | None = None, progress: bool = False
) -> Site:
    """The site for ``boards`` in ``out_dir``, with a page per run of ``pages`` (by run id)."""
    from tqdm.auto import tqdm

    pages = pages or {}
    out_dir.mkdir(parents=True, exist_ok=True)
    assets = out_dir / "assets"
    assets.mkdir(exist_ok=True)
    for name in ASSETS:
        (assets / name).write_bytes(resources.files("harness.report").joinpath("assets", name).read_bytes())
    groups: dict[tuple[str, str], list[Board]] = {}
    for board in boards:
        groups.setdefault((board.dataset, board.threat_model), []).append(board)
    listed: list[tuple[str, tuple[str, str], list[Board]]] = []
    used: set[str] = set()
    for key, group in groups.items():
        name = slug(f"{key[0]}_{key[1]}")
        while name in used:
            name += "_"
        used.add(name)
        listed.append((f"{name}.html", key, group))
    nav = [(name, f"{dataset} — {threat}") for name, (dataset, threat), _ in listed]
    site = Site(out_dir / "index.html")
    work = tqdm(total=len(listed) + len(pages), desc="leaderboard --html", unit="page", disable=not progress)
    with work:
        for name, (dataset, threat), group in listed:
            sections = []
            for board in group:
                back = (f"{name}#{_anchor(board)}", f"{board.dataset} {board.threat_model} {_title(board)}")
                for e in board.entries:
                    page = pages.get(e.run_id)
                    if page is not None and RUN_ID.fullmatch(e.run_id):
                        write_run_page(page, out_dir, back=back, nav=nav)
                        work.update(1)
                sections.append(_board_section(board, pages))
            body = f"<h1>{esc(dataset)} — {esc(threat)}</h1>\n{_toolbar()}\n" + "\n".join(sections)
            title = f"robint-bench: {dataset} {threat}"
            write_text_atomic(out_dir / name, document(title, body, nav, current=name))
            work.update(1)
    site.warnings += _figure_warnings(pages.values())
    write_text_atomic(site.index, document("robint-bench leaderboard", _index(listed), nav))
    return site


def _figure_warnings(pages: Iterable[RunPage]) -> list[str]:
    """One warning for the runs whose figures are missing: those the run recorded writing (``details["figures"]``)
    that are not beside the database (a run that recorded none, e.g. one run with --no-figures, is not warned of; its
    page says it has none)."""
    missing = [p for p in pages if p.missing]
    if not missing:
        return []
    where = sorted({str(p.files_dir.parent) for p in missing if p.files_dir is not None})
    ids = ", ".join(p.run_id for p in missing[:5]) + (", ..." if len(missing) > 5 else "")
    return [
        f"{len(missing)} run(s) have missing figures ({ids}): looked in {', '.join(where)}; figures are written "
        "beside the database that evaluated the run (runs/<run id>/): copy them there, or import the archive from "
        "a folder with runs/ beside it (robint-bench import)"
    ]


def _title(board: Board) -> str:
    return "common corruptions" if board.threat_model == CORRUPTIONS else f"eps = {board.eps_text}"


def _anchor(board: Board) -> str:
    return slug(f"{board.dataset}-{board.threat_model}-{board.eps_text or 'all'}")


def _index(pages: Sequence[tuple[str, tuple[str, str], list[Board]]]) -> str:
    intro = (
        "<h1>robint-bench leaderboard</h1>\n"
        f"<p>Generated by robint-bench {esc(__version__)} from the results database; the same analysis as "
        "<code>leaderboard.md</code>. Each measured row is one model's completed run with the most test examples; "
        "a table ranks the rows of one attack protocol at one n (RobustBench's rule: AutoAttack standard on the most "
        "test images) and lists the others apart. Robust accuracy is AutoAttack's, re-checked by the harness (every "
        "adversarial example verified inside the eps-ball and [0,1], then re-classified). Intervals: 95% Wilson "
        "intervals for accuracies, 95% bootstrap intervals for interpretability means. Interpretability columns use "
        f"{esc(HEADLINE_METHOD)} attributions; ↑/↓ = higher/lower is better (hover a column for what it measures). "
        "Reported entries were imported from RobustBench model_info files (<code>robint-bench import-robustbench"
        "</code>) and were not measured here.</p>\n"
    )
    if not pages:
        return intro + (
            "<p>No completed runs yet: <code>robint-bench run --model submissions/&lt;file&gt;.py</code>.</p>"
        )
    rows = []
    for name, (dataset, threat), group in pages:
        for board in group:
            ranked = columns.main_rows(board)
            best = ranked[0].row if ranked else None
            protocol = ranked_protocol(board.entries)
            rows.append(
                [
                    Cell(f'<a href="{esc(name)}#{esc(_anchor(board))}">{esc(dataset)}</a>', dataset),
                    text(threat),
                    text(_title(board).replace("eps = ", "")),
                    text("—" if protocol is None else protocol.badge),
                    number(str(len(ranked)), len(ranked)),
                    number(str(len(board.entries) - len(ranked)), len(board.entries) - len(ranked)),
                    number(str(len(board.reported_only)), len(board.reported_only)),
                    text("—" if best is None else f"{best.model} ({100 * best.robust_acc:.1f}%)"),
                ]
            )
    header = [
        "Data set",
        "Threat model",
        "Eps",
        "Ranked protocol",
        "Ranked",
        "Other protocols",
        "Reported only",
        "Most robust (ranked)",
    ]
    return intro + table(header, rows, caption="Leaderboards")


def _toolbar() -> str:
    """Search and filters for every table of the page, the compact/all columns switch and the page size."""
    return (
        '<div class="toolbar" role="search">'
        '<input type="search" class="filter-model" placeholder="Search models…" aria-label="Search models">'
        '<select class="filter-training" aria-label="Training recipe"><option value="">All training recipes</option>'
        "</select>"
        '<select class="filter-attack" aria-label="Attack"><option value="">All attacks</option></select>'
        '<label><input type="checkbox" class="show-detail"> all columns</label>'
        '<label>rows per page <select class="page-size"><option>25</option><option>50</option>'
        '<option value="0">all</option></select></label>'
        '<span class="count" aria-live="polite"></span></div>'
    )


def _board_section(board: Board, pages: dict[str, RunPage]) -> str:
    anchor = _anchor(board)
    notes = Notes(plain_note)
    cells = HtmlCells(notes, anchor, pages)
    parts = [f'<section id="{esc(anchor)}">\n<h2>{esc(_title(board))}</h2>']
    if board.entries:
        protocol = ranked_protocol(board.entries)
        caption = f"Ranked: {protocol.badge}" if protocol else "Measured by robint-bench"
        parts.append(cells.table(columns.MAIN, columns.main_rows(board), Table(board), caption, _entry_attrs))
        if others := columns.other_rows(board):
            parts.append(f'<p class="note">{esc(columns.ranking_note(board))}</p>')
            caption = "Not ranked: another attack or fewer test images"
            parts.append(cells.table(columns.OTHER, others, Table(board), caption, _entry_attrs, "others"))
    if board.reported_only:
        reported = board.reported_only
        caption = "Reported elsewhere, not measured here (imported with import-robustbench)"
        described, rows = columns.reported_columns(reported), columns.reported_rows(reported)
        parts.append(cells.table(described, rows, Table(board), caption, _reported_attrs))
    if board.entries:
        parts.append(scatter_figure(board, anchor))
        for featurevis, caption in ((False, "Interpretability detail"), (True, "Feature visualisation detail")):
            names = columns.detail_metrics(board, featurevis=featurevis)
            detail = columns.detail_rows(board, names, featurevis=featurevis)
            if detail:
                detail_table = cells.table(
                    columns.detail_columns(names),
                    detail,
                    Table(board),
                    f"{caption} (mean [95% interval])",
                    _detail_attrs,
                )
                parts.append(
                    _folded(f"{caption}: every method and control, mean [95% bootstrap interval]", detail_table)
                )
        for title, render in (
            ("Controls: each score against its bar, the best model-free map", controls_table),
            ("Robustness vs interpretability: rank correlations across recipes", correlation_table),
            ("Adversarially trained vs standard training", versus_table),
            ("Dose-response across training eps", dose_table),
        ):
            if html := render(board):
                parts.append(_folded(title, html))
        if getattr(board, "uncompared", None):
            reasons = "; ".join(esc(u) for u in board.uncompared)
            parts.append(f'<p class="note">Not compared: {reasons}.</p>')
        if getattr(board, "reliability", None):
            parts.append('<p class="note">Metric reliability: see leaderboard.md.</p>')
    parts.append(_notes(notes, anchor))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _folded(summary: str, body: str) -> str:
    return f'<details class="fold"><summary>{esc(summary)}</summary>\n{body}\n</details>'


def _entry_attrs(r: columns.Ranked) -> dict[str, str]:
    e = r.row
    return {"model": e.model, "training": e.recipe or e.training or "", "attack": e.attack, "run": e.run_id}


def _reported_attrs(r: columns.Ranked) -> dict[str, str]:
    return {"model": str(r.row.get("model_id")), "training": "", "attack": "reported"}


def _detail_attrs(d: columns.Detail) -> dict[str, str]:
    e = d.entry
    return {"model": e.model, "training": e.recipe or e.training or "", "attack": e.attack}


class HtmlCells:
    """Writes a section's cells (harness.report.cells) as HTML: marks beside the value, each linked to its numbered
    note (``notes``, anchored under ``anchor``) with the note's text on hover; a measured row's model links to its
    run page (``pages``)."""

    def __init__(self, notes: Notes, anchor: str, pages: dict[str, RunPage]) -> None:
        self.notes, self.anchor, self.pages = notes, anchor, pages

    def table(
        self,
        described: Sequence[Column[R]],
        rows: Sequence[R],
        context: Table,
        caption: str,
        attrs: Callable[[R], dict[str, str]] | None = None,
        extra_class: str = "",
    ) -> str:
        shown, values = columns.layout(described, rows, context)
        body = []
        for row, cells in zip(rows, values, strict=True):
            rendered = [self.cell(v) for v in cells]
            if attrs is not None and shown and shown[1].header == "Model" and isinstance(cells[1], Text):
                run = attrs(row).get("run")
                if run in self.pages and RUN_ID.fullmatch(run):
                    rendered[1] = _link_model(rendered[1], run)
            body.append((rendered, attrs(row) if attrs else {}))
        return table(
            [c.header for c in shown],
            [r for r, _ in body],
            caption=caption,
            descending=[c.descending for c in shown],
            descriptions=[c.description for c in shown],
            detail=[c.detail for c in shown],
            row_attrs=[a for _, a in body],
            filterable=attrs is not None,
            extra_class=extra_class,
        )

    def cell(self, value: Value) -> Cell:
        if isinstance(value, Text):
            return Cell(esc(value.value) + self._marks(value.marks), value.sort)
        if isinstance(value, Number):
            shown = esc(value.shown)
            if value.tooltip is not None:
                title = f' title="{esc(value.tooltip)}"' if value.tooltip else ""
                shown = f'<span class="val"{title}>{shown}</span>'
            sort = "" if value.sort is None else repr(float(value.sort))
            return Cell(shown + self._marks(value.marks), sort, num=True)
        if isinstance(value, Link):
            return Cell(f'<a href="{esc(value.url)}" rel="noopener noreferrer">{esc(value.text)}</a>', value.text)
        if isinstance(value, Code):
            return Cell(f"<code>{esc(value.value)}</code>", value.value)
        if isinstance(value, Figures):
            return self._figures(value)
        if isinstance(value, Missing):
            return Cell("—", "")
        raise TypeError(f"no HTML for a {type(value).__name__} cell")

    def _marks(self, marks: Sequence[Mark]) -> str:
        out = []
        for mark in marks:
            number_ = self.notes.number(mark.note)
            href = f"#{esc(self.anchor)}-note-{number_}"
            tip = esc(plain_note(mark.note))
            if isinstance(mark, FlagMark):
                out.append(f'<a class="mark flag" href="{href}" title="{tip}">⚠ {esc(mark.code)}</a>')
            else:
                out.append(f'<a class="mark" href="{href}" title="{tip}">{esc(mark.symbol)}<sup>{number_}</sup></a>')
        return "".join(out)

    def _figures(self, run: Figures) -> Cell:
        page = self.pages.get(run.run_id)
        if page is None or not RUN_ID.fullmatch(run.run_id):
            return Cell("—", "")
        if not page.figures:
            why = "no figures found" if page.files_dir is None else f"figures missing from {page.files_dir}"
            return Cell(f'<span class="missing" title="{esc(why)}">missing</span>', "")
        count = len(page.figures)
        return Cell(f'<a href="run-{run.run_id}.html#figures">{count} figure{"s" if count != 1 else ""}</a>', count)


def _link_model(cell: Cell, run_id: str) -> Cell:
    """The model cell's name linked to its run page (its marks stay beside it)."""
    name, sep, marks = cell.html.partition('<a class="mark')
    linked = f'<a class="run" href="run-{run_id}.html">{name}</a>' + (sep + marks if sep else "")
    return Cell(linked, cell.sort, cell.num)


def scatter_figure(board: Board, anchor: str) -> str:
    """Robust accuracy against each headline score the board has, one SVG per score, one shown at a time. A curve
    metric is plotted as its table column shows it: normalised between each model's floor and ceiling (the models
    with stored bounds), else raw."""
    ranked = {e.run_id for e in (r.row for r in columns.main_rows(board))}
    plots = []
    for method, metric in HEADLINE:
        normalised = normalised_by_run(board.entries, metric)
        points = []
        for e in board.entries:
            score = normalised.get(e.run_id) if normalised else e.scores.get((method, metric))
            if score is None or score.mean is None or not math.isfinite(score.mean):
                continue
            lo, hi = e.robust_interval
            x = (100 * e.robust_acc, 100 * lo, 100 * hi)
            points.append(Point(e.model, *x, score.mean, score.low, score.high, e.run_id in ranked))
        if len(points) >= 2:
            plots.append((method, metric, points, bool(normalised)))
    if not plots:
        return ""
    options, svgs = [], []
    for i, (method, metric, points, norm) in enumerate(plots):
        key = f"{anchor}-scatter-{i}"
        name = f"{METRICS.get(metric).short} norm. ↑" if norm else label(metric)
        what = name + (" (feature visualisation)" if method == FEATUREVIS_METHOD else "")
        about = describe(metric, method) + (
            " Normalised between each model's own floor (0) and ceiling (1)." if norm else ""
        )
        options.append(f'<option value="{esc(key)}" data-describe="{esc(about)}">{esc(what)}</option>')
        svg = scatter_svg(points, metric=metric, label=name, svg_id=key)
        svgs.append(svg if i == 0 else svg.replace("<svg ", "<svg hidden ", 1))
    first = plots[0]
    about = describe(first[1], first[0]) + (
        " Normalised between each model's own floor (0) and ceiling (1)." if first[3] else ""
    )
    return (
        '<figure class="scatters">'
        f'<figcaption>AA robust accuracy against <select class="metric" aria-label="Score">{"".join(options)}'
        "</select> one point per model with 95% intervals (hollow: not in the ranked protocol); hover a point for "
        f'the model. <span class="describe">{esc(about)}</span></figcaption>' + "".join(svgs) + "</figure>"
    )


def correlation_table(board: Board) -> str:
    """Spearman's rho across the board's models between robust accuracy and each score, with what the analysis
    gives (interval or p-values) and its verdict."""
    if not board.correlations:
        return ""
    rows = []
    for c in board.correlations:
        rho = getattr(c, "rho", math.nan)
        shown = "n/a" if _nan(rho) else f"{rho:+.2f}"
        low, high = getattr(c, "low", None), getattr(c, "high", None)
        if low is not None and not _nan(low):
            shown += f" [{low:.2f}, {high:.2f}]"
        p_value = getattr(c, "p_adjusted", getattr(c, "p_value", None))
        rows.append(
            [
                text(c.method),
                text(label(c.metric)),
                number(f"{c.n_units} ({c.n_models})", c.n_units),
                number(shown, None if _nan(rho) else rho),
                number("—" if p_value is None or _nan(p_value) else f"{p_value:.3f}", p_value),
                text(c.verdict),
            ]
        )
    header = [
        "Method",
        "Metric",
        "Recipes (models)",
        "Spearman ρ (robust acc, metric)",
        "p (adjusted)",
        "Robust → more interpretable?",
    ]
    return table(header, rows, caption="Robustness vs interpretability across recipes")


def versus_table(board: Board) -> str:
    """Each adversarially trained recipe against the standard recipe of its architecture."""
    if not board.comparisons:
        return ""
    rows = []
    for c in board.comparisons:
        shown = f"{c.diff:+.3f}"
        if not _nan(getattr(c, "low", math.nan)):
            shown += f" [{c.low:+.3f}, {c.high:+.3f}]"
        elif getattr(c, "intervals", None):
            (a_lo, a_hi), (b_lo, b_hi) = c.intervals
            shown += f" (intervals {_interval(a_lo, a_hi)} vs {_interval(b_lo, b_hi)})"
        baseline = c.baseline + ("" if c.matched else " (not epochs-matched)")
        rows.append(
            [
                text(c.model),
                text(baseline),
                text(c.method),
                text(label(c.metric)),
                number(shown, c.diff),
                text("normalised" if c.normalised else "raw"),
                text(f"{c.seeds[0]} vs {c.seeds[1]} seeds"),
                text(c.verdict),
            ]
        )
    header = [
        "Recipe",
        "Standard baseline",
        "Method",
        "Score",
        "Recipe − baseline [95% interval]",
        "Values",
        "Seeds",
        "Robust → more interpretable?",
    ]
    caption = "Adversarially trained vs standard training (the seed paper's comparison)"
    return table(header, rows, caption=caption)


def controls_table(board: Board) -> str:
    """Each headline score minus each control's on the same images, and whether it beats it."""
    if not getattr(board, "controls", None):
        return ""
    rows = []
    for c in board.controls:
        rows.append(
            [
                text(c.model),
                text(c.method),
                text(label(c.metric)),
                text(f"{c.bar} ({c.bar_mean:.3f})"),
                number(f"{c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}]", c.diff),
                text("yes" if c.beats else "no"),
            ]
        )
    header = ["Model", "Method", "Score", "Bar (best model-free control)", "Method − bar [95% paired]", "Beats it?"]
    return table(header, rows, caption="Controls: each score against its best model-free control")


def dose_table(board: Board) -> str:
    """Spearman's rho between training eps and each score across models of one recipe that differ only in eps."""
    if not getattr(board, "dose_response", None):
        return ""
    rows = []
    for d in board.dose_response:
        rho = getattr(d, "rho", math.nan)
        p_value = getattr(d, "p_adjusted", getattr(d, "p_value", None))
        rows.append(
            [
                text(d.method),
                text(label(d.metric)),
                number(str(d.n_models), d.n_models),
                text(", ".join(f"{e:g}" for e in getattr(d, "eps_values", ()))),
                number("n/a" if _nan(rho) else f"{rho:+.2f}", None if _nan(rho) else rho),
                number("—" if p_value is None or _nan(p_value) else f"{p_value:.3f}", p_value),
                text(d.verdict),
            ]
        )
    header = ["Method", "Score", "Models", "Training eps", "Spearman ρ (eps, score)", "p (adjusted)", "Verdict"]
    return table(header, rows, caption="Dose-response across training eps")


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None else f"[{low:.1f}, {high:.1f}]"


def _notes(notes: Notes, anchor: str) -> str:
    items = notes.items()
    if not items:
        return ""
    return (
        '<ol class="notes">'
        + "".join(f'<li id="{esc(anchor)}-note-{i}">{esc(note)}</li>' for i, note in enumerate(items, 1))
        + "</ol>"
    )
