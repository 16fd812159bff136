"""A run's page in the HTML site (``run-<run id>.html``), from its :class:`~harness.report.runpage.RunPage`: a link
back to its board, its numbers (accuracies with intervals, AutoAttack's log, every stored score), settings,
versions, flags, stage times and figures (copied into the site; a figure it wrote that is missing is said so)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.report.columns import describe, label
from harness.report.html_base import RUN_ID, Cell, copy_figures, document, esc, number, table, text
from harness.report.runpage import FIGURE_CAPTIONS, RunPage, ScoreRow
from harness.report.wording import duration
from harness.store.files import write_text_atomic
from metrics.registry import HEADLINE, HEADLINE_METHOD, METRICS


def write_run_page(page: RunPage, out_dir: Path, *, back: tuple[str, str], nav: Sequence[tuple[str, str]] = ()) -> Path:
    """Write ``run-<run id>.html`` (and copy the run's figures) into ``out_dir``; ``back``: (href, text) of its
    board."""
    if not RUN_ID.fullmatch(page.run_id):
        raise ValueError(f"not a run id that can name a file: {page.run_id!r}")
    copies = copy_figures(page, out_dir)
    href, where = back
    body = [
        f'<p class="back"><a href="{esc(href)}">← {esc(where)}</a></p>',
        f'<h1>{esc(page.model)} <span class="run-id">run <code>{esc(page.run_id)}</code></span></h1>',
        _numbers(page),
        _section("Flags", _pairs(page.flags) if page.flags else "<p>none</p>"),
        _figures(page, copies),
        '<details class="fold"><summary>Every stored score: each method, control and metric</summary>'
        + _scores(page.scores, "Every stored score")
        + "</details>",
        _section("Settings", _pairs(page.settings)),
        _section("Time", _pairs([(stage, duration(seconds)) for stage, seconds in page.times])),
        _section("Versions", _pairs(page.versions)),
    ]
    title = f"robint-bench run {page.run_id}: {page.model}"
    return write_text_atomic(out_dir / f"run-{page.run_id}.html", document(title, "\n".join(body), nav))


def _numbers(page: RunPage) -> str:
    def accuracy(value: tuple[float, float, float]) -> str:
        acc, low, high = value
        return f"{100 * acc:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"

    rows = [
        ("data", f"{page.dataset}, {page.threat_model} eps = {page.eps_text}, first {page.n} test images"),
        ("clean accuracy", accuracy(page.clean)),
        ("AA robust accuracy", f"{accuracy(page.robust)} (AutoAttack {page.attack}; 95% Wilson intervals)"),
        ("AutoAttack's log", page.autoattack),
    ]
    headline = [s for pair in HEADLINE for s in page.scores if (s.method, s.metric) == pair]
    scores = _scores(headline, f"Headline scores ({HEADLINE_METHOD} attributions, feature visualisation)")
    return '<section class="numbers"><h2>Numbers</h2>' + _pairs(rows, cls="numbers") + scores + "</section>"


def _scores(scores: Sequence[ScoreRow], caption: str) -> str:
    if not scores:
        return "<p>no interpretability or feature-visualisation scores</p>"
    rows = []
    for s in scores:
        if s.metric in METRICS:  # its label, with what it measures on hover
            name = label(s.metric)
            metric = Cell(f'<span title="{esc(describe(s.metric))}">{esc(name)}</span>', name)
        else:
            metric = text(s.metric, s.metric)
        if s.mean is None:
            value = Cell(f'<span class="na" title="{esc(s.reason)}">n/a: {esc(s.reason)}</span>', "")
        else:
            shown = f"{s.mean:.3f}" + ("" if s.low is None else f" [{s.low:.3f}, {s.high:.3f}]")
            value = number(shown, s.mean)
        rows.append([text(s.method), metric, value, number(str(s.n), s.n)])
    header = ["Method", "Score", "Mean [95% interval]", "n"]
    tips = ["", "", "The mean over the scored images and its 95% bootstrap interval", "Images (or cells) scored"]
    return table(header, rows, caption=caption, descriptions=tips)


def _figures(page: RunPage, copies: dict[str, str]) -> str:
    parts = []
    for name, src in copies.items():
        caption = FIGURE_CAPTIONS.get(name, name)
        parts.append(
            f'<figure><img class="plot" src="{esc(src)}" alt="{esc(caption)}"><figcaption>{esc(caption)}'
            "</figcaption></figure>"
        )
    if page.missing:
        where = "this database has no files directory" if page.files_dir is None else f"not in {page.files_dir}"
        parts.append(f'<p class="missing">Missing ({esc(where)}): {esc(", ".join(page.missing))}</p>')
    elif not copies:
        where = "the database has no files directory" if page.files_dir is None else f"none in {page.files_dir}"
        parts.append(f'<p class="missing">No figures: {esc(where)}.</p>')
    return '<section id="figures"><h2>Figures</h2>' + "\n".join(parts) + "</section>"


def _section(title: str, html: str) -> str:
    return f"<section><h2>{esc(title)}</h2>{html}</section>"


def _pairs(rows: Sequence[tuple[str, str]], *, cls: str = "pairs") -> str:
    items = "".join(f'<tr><th scope="row">{esc(k)}</th><td>{esc(v)}</td></tr>' for k, v in rows)
    return f'<table class="{cls}"><tbody>{items}</tbody></table>'
