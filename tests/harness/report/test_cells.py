"""Every kind of leaderboard cell (harness/report/cells.py) as both formats write it: leaderboard.md
(harness.report.markdown.MarkdownCells) and the HTML site (harness.report.html.HtmlCells)."""

from __future__ import annotations

import typing

import pytest
from PIL import Image

from harness.report.cells import Code, Figures, FlagMark, Link, Missing, NoteMark, Number, Text, Value
from harness.report.html import HtmlCells
from harness.report.html_base import esc
from harness.report.markdown import Files, MarkdownCells
from harness.report.notes import CONTROL_NOTE, Notes, markdown_note, plain_note
from harness.report.runpage import RunPage

TIP = "95% interval [0.400, 0.600], n=6"
# (value, markdown, HTML): every kind, stored text hostile where a kind holds some
CASES = [
    (Text("a*b <i>", sort="k"), "a\\*b &lt;i&gt;", '<td data-sort="k">a*b &lt;i&gt;</td>'),
    (Text("x  y\nz", limit=3, collapse=True), "x …", "<td>x  y\\x0az</td>"),  # markdown: one line, cut
    (Number("1.5", 1.5), "1.5", '<td class="num" data-sort="1.5">1.5</td>'),
    (Number("—", None), "—", '<td class="num" data-sort="">—</td>'),
    (Number("0.500", 0.5, tooltip=""), "0.500", '<td class="num" data-sort="0.5"><span class="val">0.500</span></td>'),
    (
        Number("0.500", 0.5, tooltip=TIP),
        "0.500",
        f'<td class="num" data-sort="0.5"><span class="val" title="{TIP}">0.500</span></td>',
    ),
    (Missing(), "—", '<td data-sort="">—</td>'),
    (
        Link("P <1>", "https://x.org/a b"),
        "[P &lt;1&gt;](https://x.org/a%20b)",
        '<td data-sort="P &lt;1&gt;"><a href="https://x.org/a b" rel="noopener noreferrer">P &lt;1&gt;</a></td>',
    ),
    (Code("abc123"), "`abc123`", '<td data-sort="abc123"><code>abc123</code></td>'),
    (Code("not`hex"), "not\\`hex", '<td data-sort="not`hex"><code>not`hex</code></td>'),
]


@pytest.fixture
def cells(tmp_path):
    return MarkdownCells(Notes(markdown_note), None), HtmlCells(Notes(plain_note), "sec", {})


@pytest.mark.parametrize(("value", "md", "html"), CASES)
def test_each_kind_in_both_formats(cells, value, md, html):
    markdown, site = cells
    assert markdown.cell(value) == md
    assert site.cell(value).render() == html


def test_every_kind_has_a_case_and_an_unknown_one_is_an_error(cells):
    kinds = {type(value) for value, _, _ in CASES} | {Figures}  # Figures: below, with files
    assert kinds == set(typing.get_args(Value))
    for writer in cells:
        with pytest.raises(TypeError):
            writer.cell(object())


def test_marks_refer_to_numbered_notes(cells):
    markdown, site = cells
    flag = FlagMark("low-clean-accuracy", "<b>so</b>")
    value = Number("0.5", 0.5, marks=(flag, NoteMark(CONTROL_NOTE, "†"), NoteMark(("n/a: ", "x"))))
    assert markdown.cell(value) == "0.5 ⚠1 † (note 2) (note 3)"
    # the site: each mark beside the value, linked to its note, the note's text on hover
    assert site.cell(value).html == (
        '0.5<a class="mark flag" href="#sec-note-1" title="⚠ low-clean-accuracy: &lt;b&gt;so&lt;/b&gt;">'
        "⚠ low-clean-accuracy</a>"
        f'<a class="mark" href="#sec-note-2" title="{esc(plain_note(CONTROL_NOTE))}">†<sup>2</sup></a>'
        '<a class="mark" href="#sec-note-3" title="n/a: x"><sup>3</sup></a>'  # a note without a symbol: its number
    )
    assert markdown.notes.items()[0] == "⚠ low-clean-accuracy: &lt;b&gt;so&lt;/b&gt;"
    assert site.notes.items()[0] == "⚠ low-clean-accuracy: <b>so</b>"  # escaped where the site writes its notes


def test_figures_link_a_runs_folder_in_markdown_and_the_run_page_in_the_site(tmp_path):
    runs = tmp_path / "results" / "runs"
    (runs / "abc1").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(runs / "abc1" / "attributions.png")
    markdown = MarkdownCells(Notes(markdown_note), Files(out=tmp_path / "leaderboard.md", root=tmp_path / "results"))
    assert markdown.cell(Figures("abc1", "m")) == "[figures](results/runs/abc1)"
    assert markdown.cell(Figures("abc2", "m")) == "—"  # no folder
    assert MarkdownCells(Notes(markdown_note), None).cell(Figures("abc1", "m")) == "—"  # no files: not linked

    def page(run_id: str, figures: dict) -> RunPage:
        acc = (0.5, 0.4, 0.6)
        return RunPage(run_id, "m", "fashion-mnist", "Linf", "0.1", 10, "standard", acc, acc, "", [], [], [], [], [],
                       figures=figures, files_dir=runs / run_id)  # fmt: skip

    pages = {"abc1": page("abc1", {"attributions.png": runs / "abc1" / "attributions.png"}), "abc3": page("abc3", {})}
    site = HtmlCells(Notes(plain_note), "sec", pages)
    assert site.cell(Figures("abc1", "<m>")).render() == (
        '<td data-sort="1"><a href="run-abc1.html#figures">1 figure</a></td>'
    )
    assert site.cell(Figures("abc3", "m")).render() == (  # a page without figures: said, never a silent dash
        f'<td data-sort=""><span class="missing" title="figures missing from {runs / "abc3"}">missing</span></td>'
    )
    assert site.cell(Figures("abc2", "m")).render() == '<td data-sort="">—</td>'  # no run page
