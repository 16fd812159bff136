"""What every page of the HTML site shares (harness.report.html, harness.report.html_runs): escaping, cells, the
sortable and filterable table, the page frame, file names, and the copying of a run's figures into the site."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import __version__
from harness.report.escape import html_text
from harness.report.runpage import RunPage

RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # run ids that become file names in the site


def esc(value: Any) -> str:
    """Text (or an attribute value) escaped for HTML (harness.report.escape.html_text: controls shown as escapes)."""
    return html_text(value, None)


@dataclass(frozen=True)
class Cell:
    """One table cell: its HTML (already escaped), its sort value, whether it is a number, whether it is a detail
    column's (hidden in the compact view)."""

    html: str
    sort: str | float | None = None
    num: bool = False

    def render(self, detail: bool = False) -> str:
        sort = "" if self.sort is None else f' data-sort="{esc(self.sort)}"'
        classes = " ".join(c for c in ("num" if self.num else "", "detail" if detail else "") if c)
        cls = f' class="{classes}"' if classes else ""
        return f"<td{cls}{sort}>{self.html}</td>"


def text(value: Any, sort: Any = None) -> Cell:
    return Cell(esc(value), sort)


def number(shown: str, value: float | None) -> Cell:
    return Cell(esc(shown), "" if value is None else repr(float(value)), num=True)


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    caption: str = "",
    descending: Sequence[bool] = (),
    descriptions: Sequence[str] = (),
    detail: Sequence[bool] = (),
    row_attrs: Sequence[dict[str, str]] = (),
    filterable: bool = False,
    extra_class: str = "",
) -> str:
    """A sortable table. ``descending``: per column, whether its first click sorts highest first; ``descriptions``:
    each header's tooltip; ``detail``: columns hidden in the compact view; ``row_attrs``: each row's ``data-*``
    values for the page's filters (``filterable``: the search, filters and paging apply)."""
    n = len(header)

    def pad(values: Sequence[Any], default: Any) -> list[Any]:
        return [*values, *([default] * (n - len(values)))]

    first, tips, hidden = pad(descending, False), pad(descriptions, ""), pad(detail, False)
    heads = []
    for h, d, tip, det in zip(header, first, tips, hidden, strict=True):
        attrs = ' scope="col"' + (' data-order="desc"' if d else "") + (f' title="{esc(tip)}"' if tip else "")
        cls = " ".join(c for c in ("described" if tip else "", "detail" if det else "") if c)
        heads.append(f"<th{attrs}{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}>{esc(h)}</th>")
    body = []
    for i, row in enumerate(rows):
        data = row_attrs[i] if i < len(row_attrs) else {}
        attrs = "".join(f' data-{k}="{esc(v)}"' for k, v in data.items())
        body.append(
            f"<tr{attrs}>" + "".join(cell.render(det) for cell, det in zip(row, hidden, strict=False)) + "</tr>"
        )
    cls = " ".join(c for c in ("sortable", "filterable" if filterable else "", extra_class) if c)
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    table = f'<table class="{cls}">{cap}<thead><tr>{"".join(heads)}</tr></thead>\n<tbody>\n' + "\n".join(body)
    return f'<div class="table-wrap">{table}\n</tbody></table></div>'


def document(title: str, body: str, nav: Sequence[tuple[str, str]], *, current: str | None = None) -> str:
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
        '<div class="tooltip" hidden></div>\n'
        '<script src="assets/leaderboard.js"></script>\n</body>\n</html>\n'
    )


def slug(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value).strip("_") or "board"


def copy_figures(page: RunPage, out_dir: Path) -> dict[str, str]:
    """Copy the run's figures into the site (``runs/<run id>/``); returns name -> the copy's relative path."""
    if not page.figures or not RUN_ID.fullmatch(page.run_id):
        return {}
    target = out_dir / "runs" / page.run_id
    target.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, source in page.figures.items():
        shutil.copyfile(source, target / name)
        out[name] = f"runs/{page.run_id}/{name}"
    return out
