"""What a leaderboard cell holds, independent of the format: leaderboard.md (harness.report.markdown) and the HTML
site (harness.report.html) each write every kind below, so a column (harness.report.columns) is described once.

Marks follow a cell's content and refer to a numbered note (harness.report.notes): :class:`NoteMark` writes
`` (note N)`` (`` † (note N)`` with a symbol), :class:`FlagMark` a run's flag (markdown `` ⚠N``; HTML the code,
with the message on hover)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.report.notes import Note, flag_note


@dataclass(frozen=True)
class NoteMark:
    """A reference to ``note``, after an optional ``symbol`` (e.g. †)."""

    note: Note
    symbol: str = ""


@dataclass(frozen=True)
class FlagMark:
    """A measured run's flag (its note: :func:`harness.report.notes.flag_note`)."""

    code: object
    message: object

    @property
    def note(self) -> Note:
        return flag_note({"code": self.code, "message": self.message})


Mark = NoteMark | FlagMark


@dataclass(frozen=True)
class Text:
    """Stored text, escaped by each format; markdown cuts it to ``limit`` characters (``collapse``: whitespace runs
    become one space first). ``sort``: its HTML sort key (None: the cell has none)."""

    value: object
    sort: str | None = None
    marks: tuple[Mark, ...] = ()
    limit: int = 500
    collapse: bool = False


@dataclass(frozen=True)
class Number:
    """A number formatted here (``shown``), its sort value (None: sorts as missing) and HTML hover text
    (``tooltip``; None: not a hover target, "": a target without text)."""

    shown: str
    sort: float | None
    marks: tuple[Mark, ...] = ()
    tooltip: str | None = None


@dataclass(frozen=True)
class Missing:
    """No value (written "—")."""


@dataclass(frozen=True)
class Link:
    """Stored text linked to an http(s) ``url`` (harness.store.robustbench.paper_link); markdown cuts the text to
    1000 characters."""

    text: str
    url: str


@dataclass(frozen=True)
class Code:
    """An identifier written as code (a run id; markdown writes one that is not a harness run id as text)."""

    value: str


@dataclass(frozen=True)
class Figures:
    """A link to a run's figures (markdown: its folder of images; HTML: a page of the copies in the site), or "—"
    when it has none."""

    run_id: str
    model: str


Value = Text | Number | Missing | Link | Code | Figures
