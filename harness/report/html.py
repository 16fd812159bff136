"""The leaderboard as a static HTML site (``robint-bench leaderboard --html DIR``), rendered from the same analysis
values as leaderboard.md (harness.report.analysis).

``DIR/index.html`` lists one page per data set and threat model (``DIR/<dataset>_<threat model>.html``); each page
holds that setting's tables (one per eps; corruptions have one), ranked as in leaderboard.md, with sortable
columns (``assets/leaderboard.js``: click or press Enter on a header), the scatter plots (``plots/``), the notes,
and links to each run's figures (copied to ``runs/<run id>/`` with a page ``run-<run id>.html``). Everything the
site needs is inside DIR: no server, no network, no CDN. Every stored string (model names, titles, footnotes,
flags) is HTML-escaped; only http(s) paper links become links.

Long because the static site's pages (index, board, run pages) and its self-contained assets are one renderer of the
analysis values; the pages share escaping and table helpers.
"""

from __future__ import annotations

import math
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from harness import __version__, store
from harness.report import markdown
from harness.report.analysis import analyse
from harness.report.board import Board
from harness.report.entries import Entry
from harness.report.escape import html_text
from harness.report.markdown import label
from harness.report.plots import scatter_plot
from harness.report.scores import Score
from harness.store.files import files_root, write_text_atomic
from harness.store.robustbench import (
    CORRUPTION_COLUMNS,
    CORRUPTIONS,
    best_known,
    is_corruptions,
    paper_link,
    plain_text,
    rank_key,
    two_decimals,
    unreliable_mark,
)
from metrics.registry import FEATUREVIS_METHOD, FEATUREVIS_SCORES, HEADLINE, HEADLINE_METHOD, METRICS

ASSETS = ("leaderboard.css", "leaderboard.js")
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def esc(value: Any) -> str:
    """Text (or an attribute value) escaped for HTML (harness.report.escape.html_text: controls shown as escapes)."""
    return html_text(value, None)


@dataclass(frozen=True)
class Cell:
    """One table cell: its HTML (already escaped), its sort value, and whether it is a number."""

    html: str
    sort: str | float | None = None
    num: bool = False

    def render(self) -> str:
        sort = "" if self.sort is None else f' data-sort="{esc(self.sort)}"'
        cls = ' class="num"' if self.num else ""
        return f"<td{cls}{sort}>{self.html}</td>"


class Notes:
    """Numbered notes of one section, in order of first reference (as in leaderboard.md)."""

    def __init__(self) -> None:
        self._notes: dict[str, None] = {}

    def ref(self, note: str) -> str:
        self._notes.setdefault(note)
        return f"note {list(self._notes).index(note) + 1}"

    def items(self) -> list[str]:
        return list(self._notes)


def text(value: Any, sort: Any = None) -> Cell:
    return Cell(esc(value), sort)


def number(shown: str, value: float | None) -> Cell:
    return Cell(esc(shown), "" if value is None else repr(float(value)), num=True)


def write_html_leaderboard(db: str, out_dir: Path) -> Path:
    """Write the site for the database at ``db`` into ``out_dir``; returns ``out_dir/index.html``."""
    root = files_root(db)
    with store.transaction(store.open_database(db, create=False)) as s:
        boards = analyse(s)
    return write_site(boards, Path(out_dir), runs_root=None if root is None else root / "runs")


def write_site(boards: list[Board], out_dir: Path, *, runs_root: Path | None = None) -> Path:
    """The site for ``boards`` in ``out_dir`` (figures of run ``r`` are read from ``runs_root / r``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    assets = out_dir / "assets"
    assets.mkdir(exist_ok=True)
    for name in ASSETS:
        (assets / name).write_bytes(resources.files("harness.report").joinpath("assets", name).read_bytes())
    groups: dict[tuple[str, str], list[Board]] = {}
    for board in boards:
        groups.setdefault((board.dataset, board.threat_model), []).append(board)
    pages: list[tuple[str, tuple[str, str], list[Board]]] = []
    used: set[str] = set()
    for key, group in groups.items():
        slug = _slug(f"{key[0]}_{key[1]}")
        while slug in used:
            slug += "_"
        used.add(slug)
        pages.append((f"{slug}.html", key, group))
    nav = [(name, f"{dataset} — {threat}") for name, (dataset, threat), _ in pages]
    for name, (dataset, threat), group in pages:
        sections = [_board_section(board, out_dir, runs_root) for board in group]
        body = f"<h1>{esc(dataset)} — {esc(threat)}</h1>\n" + "\n".join(sections)
        write_text_atomic(out_dir / name, _document(f"robint-bench: {dataset} {threat}", body, nav, current=name))
    return write_text_atomic(out_dir / "index.html", _document("robint-bench leaderboard", _index(pages), nav))


def _index(pages: Sequence[tuple[str, tuple[str, str], list[Board]]]) -> str:
    intro = (
        "<h1>robint-bench leaderboard</h1>\n"
        f"<p>Generated by robint-bench {esc(__version__)} from the results database; the same analysis as "
        "<code>leaderboard.md</code>. Each measured row is one model's completed run with the most test examples. "
        "Robust accuracy is AutoAttack's, re-checked by the harness (every adversarial example verified inside the "
        "eps-ball and [0,1], then re-classified). Intervals: 95% Wilson intervals for accuracies, 95% bootstrap "
        f"intervals for interpretability means. Interpretability columns use {esc(HEADLINE_METHOD)} attributions; "
        "↑/↓ = higher/lower is better. Reported entries were imported from RobustBench model_info files "
        "(<code>robint-bench import-robustbench</code>) and were not measured here.</p>\n"
    )
    if not pages:
        return intro + (
            "<p>No completed runs yet: <code>robint-bench run --model submissions/&lt;file&gt;.py</code>.</p>"
        )
    rows = []
    for name, (dataset, threat), group in pages:
        tables = ", ".join("corruptions" if b.threat_model == CORRUPTIONS else f"eps = {b.eps_text}" for b in group)
        measured = sum(len(b.entries) for b in group)
        reported = sum(len(b.reported_only) for b in group)
        rows.append(
            [
                Cell(f'<a href="{esc(name)}">{esc(dataset)}</a>', dataset),
                text(threat),
                text(tables),
                number(str(measured), measured),
                number(str(reported), reported),
            ]
        )
    header = ["Data set", "Threat model", "Tables", "Models measured", "Reported only"]
    return intro + _table(header, rows, sortable=True, caption="Leaderboards")


def _board_section(board: Board, out_dir: Path, runs_root: Path | None) -> str:
    notes = Notes()
    title = "common corruptions" if board.threat_model == CORRUPTIONS else f"eps = {board.eps_text}"
    anchor = _slug(f"{board.dataset}-{board.threat_model}-{board.eps_text or 'all'}")
    parts = [f'<section id="{esc(anchor)}">\n<h2>{esc(title)}</h2>']
    if board.entries:
        header, rows = _main_rows(board, notes, out_dir, runs_root)
        parts.append(_table(header, rows, sortable=True, caption="Measured by robint-bench", desc=_DESC))
    if board.reported_only:
        header, rows = _reported_rows(board.reported_only, notes)
        caption = "Reported elsewhere, not measured here (imported with import-robustbench)"
        parts.append(_table(header, rows, sortable=True, caption=caption, desc=_DESC))
    if board.entries:
        for featurevis, caption in ((False, "Interpretability detail"), (True, "Feature visualisation detail")):
            detail = _detail_rows(board, notes, featurevis=featurevis)
            if detail is not None:
                parts.append(_table(*detail, sortable=True, caption=f"{caption} (mean [95% bootstrap interval])"))
        if getattr(board, "controls", None):
            parts.append(_controls_table(board))
        if board.correlations:
            parts.append(_correlation_table(board))
        if board.comparisons:
            parts.append(_versus_table(board))
        if getattr(board, "uncompared", None):
            reasons = "; ".join(esc(u) for u in board.uncompared)
            parts.append(
                f'<p class="note">Not compared (no single standard recipe of their architecture): {reasons}.</p>'
            )
        if any(board.detail_pairs) and (plot := scatter_plot(board, out_dir / "plots")) is not None:
            src = plot.relative_to(out_dir).as_posix()
            parts.append(
                f'<figure><img class="plot" src="{esc(src)}" alt="AA robust accuracy against each headline score, '
                f'{esc(board.dataset)} {esc(board.threat_model)} {esc(board.eps_text)}">'
                "<figcaption>AA robust accuracy against each headline score, one point per model, with 95% "
                "intervals.</figcaption></figure>"
            )
    if getattr(board, "reliability", None) or getattr(board, "dose_response", None):
        parts.append('<p class="note">Metric reliability and dose-response: see leaderboard.md.</p>')
    parts.append(_notes(notes))
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


# Columns whose first click sorts descending (accuracies and scores: best first).
_DESC = ("Clean", "AA", "Best", "Reported", "Robust", "n")


def _main_rows(board: Board, notes: Notes, out_dir: Path, runs_root: Path | None) -> tuple[list[str], list[list[Cell]]]:
    header = ["Rank", "Model", "Clean acc (%)", "AA robust acc (%) [95% CI]", "n"]
    if board.reported:
        header.append("Reported clean / robust (%)")
    header += [label(m) for _, m in HEADLINE] + ["Attack", "Training", "Date", "Run", "Figures"]
    rows = []
    for rank, e in enumerate(board.entries, start=1):
        lo, hi = e.robust_interval
        model = esc(e.model) + "".join(_flag(flag, notes) for flag in e.flags)
        cells = [
            number(str(rank), rank),
            Cell(model, e.model),
            number(f"{100 * e.clean_acc:.1f}", 100 * e.clean_acc),
            number(f"{100 * e.robust_acc:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]", 100 * e.robust_acc),
            number(str(e.n), e.n),
        ]
        if board.reported:
            cells.append(_reported_cell(e.reported, notes))
        cells += [_score_cell(e.scores.get(pair), notes, board=board, key=(e.model, *pair)) for pair in HEADLINE]
        cells += [
            text(e.attack),
            text(e.training or "—"),
            text(e.created_at.strftime("%Y-%m-%d")),
            Cell(f"<code>{esc(e.run_id)}</code>", e.run_id),
            _figures_cell(e, out_dir, runs_root),
        ]
        rows.append(cells)
    return header, rows


def _flag(flag: dict[str, Any], notes: Notes) -> str:
    code, message = flag.get("code"), flag.get("message")
    ref = notes.ref(f"⚠ {code}: {message}")
    return f' <span class="flag" title="{esc(message)}">⚠ {esc(code)} ({esc(ref)})</span>'


def _reported_cell(rep: dict[str, Any] | None, notes: Notes) -> Cell:
    if rep is None:
        return Cell("—", "")
    best = best_known(rep)
    shown = f"{two_decimals(rep.get('clean_acc'))} / {two_decimals(None if best is None else 100 * best)}"
    refs = "".join(f" ({esc(notes.ref(note))})" for note in _reported_notes(rep))
    return Cell(esc(shown) + refs, "" if best is None else repr(100 * best), num=True)


def _reported_rows(entries: list[dict[str, Any]], notes: Notes) -> tuple[list[str], list[list[Cell]]]:
    """RobustBench's columns: ranked by best known robust accuracy (``external`` if given, else AutoAttack's), or
    by corruption accuracy; the paper linked; its footnotes, flags and eps notes numbered below."""
    corruptions = any(is_corruptions(rep) for rep in entries)
    header = ["Rank", "Model", "Paper", "Clean acc (%)"]
    if corruptions:
        columns = [(key, name) for key, name in CORRUPTION_COLUMNS if any(rep.get(key) for rep in entries)]
        header += [name for _, name in columns]
    else:
        header += ["AA robust acc (%)", "Best known robust acc (%)", "AA eval. potentially unreliable"]
    header += ["Extra data", "Architecture", "Venue"]
    rows = []
    for rank, rep in enumerate(sorted(entries, key=rank_key), start=1):
        refs = "".join(f" ({esc(notes.ref(note))})" for note in _reported_notes(rep))
        cells = [number(str(rank), rank), Cell(esc(rep["model_id"]) + refs, rep["model_id"]), _paper_cell(rep)]
        cells.append(_percent_cell(rep.get("clean_acc")))
        if corruptions:
            cells += [_percent_cell(rep.get(key)) for key, _ in columns]
        else:
            best = best_known(rep)
            cells += [
                _percent_cell(rep.get("autoattack_acc")),
                _percent_cell(None if best is None else 100 * best),
                text(unreliable_mark(rep)),
            ]
        extra = rep.get("additional_data")
        cells += [
            text("—" if extra is None else ("yes" if extra else "no")),
            text(rep.get("architecture") or "—"),
            text(rep.get("venue") or "—"),
        ]
        rows.append(cells)
    return header, rows


def _reported_notes(rep: dict[str, Any]) -> list[str]:
    out = [f"⚠ {rep['model_id']} {f.get('code')}: {plain_text(f.get('message'))}" for f in rep.get("flags") or []]
    if rep.get("eps_note"):
        out.append(f"{rep['model_id']} {rep['eps_note']}")
    if plain_text(rep.get("footnote")):
        out.append(f"{rep['model_id']}: {plain_text(rep.get('footnote'))}")
    return out


def _percent_cell(value: Any) -> Cell:
    shown = two_decimals(value)
    return number(shown, None if shown == "—" else float(shown))


def _paper_cell(rep: dict[str, Any]) -> Cell:
    title = " ".join(str(rep.get("name") or "—").split())
    link = paper_link(rep)
    if link is None:
        return text(title)
    return Cell(f'<a href="{esc(link)}" rel="noopener noreferrer">{esc(title)}</a>', title)


def _score_cell(
    score: Score | None, notes: Notes, *, interval: bool = False, board: Board | None = None, key: tuple = ()
) -> Cell:
    if score is None:
        return Cell("—", "")
    if score.mean is None:
        return Cell(f"n/a ({esc(notes.ref(f'n/a: {score.na}'))})", "")
    shown = f"{score.mean:.3f}"
    if interval and score.low is not None:
        shown += f" [{score.low:.3f}, {score.high:.3f}]"
    title = "" if score.low is None else f' title="95% interval [{score.low:.3f}, {score.high:.3f}], n={score.n}"'
    marker = ""
    informative = getattr(board, "informative", None)
    control_note = getattr(markdown, "CONTROL_NOTE", None)
    if informative is not None and control_note and key and not informative(*key):
        marker = f" † ({esc(notes.ref(control_note))})"
    return Cell(f"<span{title}>{esc(shown)}</span>{marker}", repr(score.mean), num=True)


def _detail_rows(board: Board, notes: Notes, *, featurevis: bool) -> tuple[list[str], list[list[Cell]]] | None:
    pairs = [pair for pair in board.detail_pairs if (pair[0] == FEATUREVIS_METHOD) == featurevis]
    methods = list(dict.fromkeys(method for method, _ in pairs))
    order = FEATUREVIS_SCORES if featurevis else [n for n, spec in METRICS.items() if spec.stage == "attribution"]
    names = [name for name in order if any(metric == name for _, metric in pairs)]
    rows = []
    for e in board.entries:
        for method in methods:
            if any((method, m) in e.scores for m in names):
                cells = [text(e.model), text(method)]
                cells += [_score_cell(e.scores.get((method, m)), notes, interval=True) for m in names]
                rows.append(cells)
    return (["Model", "Method"] + [label(m) for m in names], rows) if rows else None


def _correlation_table(board: Board) -> str:
    """Spearman's rho across the board's models between robust accuracy and each score, with what the analysis
    gives (interval or p-values) and its verdict."""
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
                number(str(c.n_models), c.n_models),
                number(shown, None if _nan(rho) else rho),
                number("—" if p_value is None or _nan(p_value) else f"{p_value:.3f}", p_value),
                text(c.verdict),
            ]
        )
    header = [
        "Method",
        "Metric",
        "Models",
        "Spearman ρ (robust acc, metric)",
        "p (adjusted)",
        "Robust → more interpretable?",
    ]
    return _table(header, rows, sortable=True, caption="Robustness vs interpretability")


def _versus_table(board: Board) -> str:
    several = len({getattr(c, "baseline", "") for c in board.comparisons}) > 1  # one baseline per architecture
    rows = []
    for c in board.comparisons:
        shown = f"{c.diff:+.3f}"
        if not _nan(getattr(c, "low", math.nan)):
            shown += f" [{c.low:+.3f}, {c.high:+.3f}]"
        elif getattr(c, "intervals", None):
            (a_lo, a_hi), (b_lo, b_hi) = c.intervals
            shown += f" (intervals {_interval(a_lo, a_hi)} vs {_interval(b_lo, b_hi)})"
        baseline = [text(getattr(c, "baseline", ""))] if several else []
        rows.append(
            [text(c.model), *baseline, text(c.method), text(label(c.metric)), number(shown, c.diff), text(c.verdict)]
        )
    header = [
        "Model",
        *(["Standard baseline"] if several else []),
        "Method",
        "Score",
        f"Model − {board.standard_model} [95% interval]",
        "Robust → more interpretable?",
    ]
    caption = "Adversarially trained vs standard training (the seed paper's comparison)"
    return _table(header, rows, sortable=True, caption=caption)


def _controls_table(board: Board) -> str:
    rows = []
    for c in board.controls:
        rows.append(
            [
                text(c.model),
                text(c.method),
                text(label(c.metric)),
                text(c.control),
                number(f"{c.diff:+.3f} [{c.low:+.3f}, {c.high:+.3f}]", c.diff),
                text("yes" if c.beats else "matches it" if getattr(c, "matches", False) else "no"),
            ]
        )
    header = ["Model", "Method", "Score", "Control", "Method − control [95% paired]", "Beats it?"]
    return _table(header, rows, sortable=True, caption="Controls: each score against random and input-only maps")


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _interval(low: float | None, high: float | None) -> str:
    return "—" if low is None else f"[{low:.1f}, {high:.1f}]"


def _figures_cell(e: Entry, out_dir: Path, runs_root: Path | None) -> Cell:
    """Copies the run's figures into the site and links its page; "—" when it has none."""
    if runs_root is None or not _RUN_ID.fullmatch(e.run_id):
        return Cell("—", "")
    source = runs_root / e.run_id
    images = sorted(source.glob("*.png")) if source.is_dir() else []
    if not images:
        return Cell("—", "")
    target = out_dir / "runs" / e.run_id
    target.mkdir(parents=True, exist_ok=True)
    for image in images:
        shutil.copyfile(image, target / image.name)
    figures = "\n".join(
        f'<figure><img class="plot" src="runs/{e.run_id}/{esc(image.name)}" alt="{esc(image.stem)} of run '
        f'{e.run_id}"><figcaption>{esc(image.name)}</figcaption></figure>'
        for image in images
    )
    body = f"<h1>Run <code>{e.run_id}</code>: {esc(e.model)}</h1>\n{figures}"
    page = f"run-{e.run_id}.html"
    write_text_atomic(out_dir / page, _document(f"robint-bench run {e.run_id}", body, []))
    return Cell(f'<a href="{page}">figures</a>', "figures")


def _notes(notes: Notes) -> str:
    items = notes.items()
    if not items:
        return ""
    return '<ol class="notes">' + "".join(f"<li>{esc(note)}</li>" for note in items) + "</ol>"


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    sortable: bool,
    caption: str = "",
    desc: Sequence[str] = (),
) -> str:
    order = ' data-order="desc"'
    heads = "".join(
        f'<th scope="col"{order if any(h.startswith(d) for d in desc) else ""}>{esc(h)}</th>' for h in header
    )
    body = "\n".join("<tr>" + "".join(cell.render() for cell in row) + "</tr>" for row in rows)
    cls = ' class="sortable"' if sortable else ""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table{cls}>{cap}<thead><tr>{heads}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


def _document(title: str, body: str, nav: Sequence[tuple[str, str]], *, current: str | None = None) -> str:
    here = ' aria-current="page"'
    links = ['<a href="index.html">All leaderboards</a>'] + [
        f'<a href="{esc(href)}"{here if href == current else ""}>{esc(name)}</a>' for href, name in nav
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n"
        '<link rel="stylesheet" href="assets/leaderboard.css">\n</head>\n<body>\n'
        f"<nav>{' '.join(links)}</nav>\n<main>\n{body}\n</main>\n"
        f"<footer>robint-bench {esc(__version__)}: regenerate with <code>robint-bench leaderboard --html DIR"
        "</code>.</footer>\n"
        '<script src="assets/leaderboard.js"></script>\n</body>\n</html>\n'
    )


def _slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value).strip("_") or "board"
