"""The leaderboard's numbered notes, described once for leaderboard.md and the HTML site: what each note says (a
run's flag, why a score is n/a, the control mark †, a reported entry's footnotes) and their numbering per section.

A note is a sequence of literal text and :class:`Stored` strings (untrusted: a submission or an imported file chose
them); each format writes a note with its own escaping (:func:`markdown_note`, :func:`plain_note`) and numbers notes
by what it writes, so two notes that read the same share a number.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.report.escape import markdown_text
from harness.store.robustbench import plain_text


@dataclass(frozen=True)
class Stored:
    """Stored text inside a note: markdown cuts it to ``limit`` characters (``collapse``: after turning each run of
    whitespace into one space); HTML shows it whole, escaped."""

    value: object
    limit: int = 1000
    collapse: bool = False


Note = tuple[str | Stored, ...]

CONTROL_NOTE: Note = (
    "† does not beat its bar on this model: the one-sided paired test of its improvement over the best model-free "
    "control (random maps, the input times noise, 1 − x, a blurred x, edges; same images) is not significant at 5%; "
    "see Controls and the bar",
)


SHARED_NAME_NOTE: Note = (
    "⚠ another model (other files or weights) has runs under this name in the database: each is a row of its own",
)


def flag_note(flag: Mapping[str, Any]) -> Note:
    """A measured run's flag: ``⚠ code: message``."""
    return ("⚠ ", Stored(flag.get("code"), 80), ": ", Stored(flag.get("message")))


def na_note(reason: object) -> Note:
    """Why a score is n/a: ``n/a: reason``."""
    return ("n/a: ", Stored(reason))


def reported_notes(rep: Mapping[str, Any]) -> list[Note]:
    """A reported entry's notes: its flags, how its eps joined the table, and the file's own footnote."""
    model = rep["model_id"]
    texts = [f"⚠ {model} {flag.get('code')}: {plain_text(flag.get('message'))}" for flag in rep.get("flags") or []]
    if rep.get("eps_note"):
        texts.append(f"{model} {rep['eps_note']}")
    if plain_text(rep.get("footnote")):
        texts.append(f"{model}: {plain_text(rep.get('footnote'))}")
    return [(Stored(text, collapse=True),) for text in texts]


def markdown_note(note: Note) -> str:
    """A note as markdown: stored parts escaped (harness.report.escape.markdown_text) and cut."""
    return "".join(part if isinstance(part, str) else markdown_stored(part) for part in note)


def markdown_stored(part: Stored) -> str:
    value = " ".join(str(part.value).split()) if part.collapse else part.value
    return markdown_text(value, part.limit)


def plain_note(note: Note) -> str:
    """A note as plain text, unescaped and whole (HTML escapes it where it is written)."""
    return "".join(part if isinstance(part, str) else str(part.value) for part in note)


class Notes:
    """Numbered notes of one section, in order of first reference; ``write`` gives a note's text in the output's
    format (notes are numbered by that text)."""

    def __init__(self, write: Callable[[Note], str]) -> None:
        self._write = write
        self._notes: dict[str, None] = {}

    def number(self, note: Note) -> int:
        text = self._write(note)
        self._notes.setdefault(text)
        return list(self._notes).index(text) + 1

    def ref(self, note: Note) -> str:
        """``note N``: how a cell refers to the note."""
        return f"note {self.number(note)}"

    def items(self) -> list[str]:
        """The notes' texts, in order."""
        return list(self._notes)
