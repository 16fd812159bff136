"""Notes described once (harness/report/notes.py): what each says, how each format writes it, and numbering."""

from harness.report.notes import (
    CONTROL_NOTE,
    Notes,
    Stored,
    flag_note,
    markdown_note,
    na_note,
    plain_note,
    reported_notes,
)


def test_stored_parts_are_escaped_and_cut_in_markdown_and_kept_whole_in_plain_text():
    note = flag_note({"code": "c" * 100, "message": "<b>bold</b> *claim*"})
    assert plain_note(note) == "⚠ " + "c" * 100 + ": <b>bold</b> *claim*"
    assert markdown_note(note) == "⚠ " + "c" * 79 + "…: &lt;b&gt;bold&lt;/b&gt; \\*claim\\*"
    assert plain_note(na_note(None)) == "n/a: None"
    assert markdown_note(na_note("x" * 2000)) == "n/a: " + "x" * 999 + "…"
    assert markdown_note(CONTROL_NOTE) == plain_note(CONTROL_NOTE) and CONTROL_NOTE[0].startswith("† does not beat")


def test_a_reported_entrys_notes_are_its_flags_eps_note_and_footnote_on_one_line():
    rep = {
        "model_id": "M\n  2",
        "flags": [{"code": "dataset-mismatch", "message": "it says <i>cifar10</i>"}],
        "eps_note": "listed under 8/255 (file: 0.031)",
        "footnote": "Uses extra <br> data",
    }
    notes = reported_notes(rep)
    assert [plain_note(n) for n in notes] == [
        "⚠ M\n  2 dataset-mismatch: it says cifar10",
        "M\n  2 listed under 8/255 (file: 0.031)",
        "M\n  2: Uses extra ; data",
    ]
    assert markdown_note(notes[2]) == "M 2: Uses extra ; data"  # on one line
    assert reported_notes({"model_id": "M", "footnote": ""}) == []


def test_notes_are_numbered_by_first_reference_and_by_what_the_format_writes():
    long_a, long_b = ("n/a: ", Stored("a" * 50, limit=10)), ("n/a: ", Stored("a" * 60, limit=10))
    markdown, plain = Notes(markdown_note), Notes(plain_note)
    for notes in (markdown, plain):
        assert notes.ref(CONTROL_NOTE) == "note 1" and notes.number(long_a) == 2 and notes.ref(CONTROL_NOTE) == "note 1"
    assert markdown.number(long_b) == 2 and plain.number(long_b) == 3  # cut to the same text in markdown only
    assert markdown.items() == [CONTROL_NOTE[0], "n/a: aaaaaaaaa…"]
