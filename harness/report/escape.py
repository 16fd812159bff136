"""Escaping stored strings for every place they are shown: one terminal line, a markdown cell or heading, HTML,
and matplotlib text. Anything a run stored (model names, METADATA, flag messages, n/a reasons) is untrusted text:
a submission chose it, or an archive file carried it.

Each function leaves ordinary text (letters, digits, spaces, ``-``, ``.``, ``,``, ``:``, ``%``, ``/``,
``()``, intraword ``_``, non-ASCII letters and symbols) unchanged, so honest reports read exactly as before.
"""

from __future__ import annotations

import html
import re

from harness.core.schema import escape_controls

__all__ = ["html_text", "markdown_cell", "markdown_text", "plot_text", "terminal", "truncate"]

# markdown punctuation that can start a construct (emphasis, code, math, strikethrough, links, images, HTML)
_MARKDOWN = re.compile(r"[\\`*~$\[\]]|!(?=\[)|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")


def terminal(text: object, limit: int | None = 2000) -> str:
    """One printable line: control and text-reordering characters shown as ``\\xNN``/``\\uNNNN`` escapes (so no
    ANSI sequence, carriage return or newline reaches the terminal), at most ``limit`` characters.

    >>> terminal("stored run \\x1b[32m99%\\x1b[0m\\nnext")
    'stored run \\\\x1b[32m99%\\\\x1b[0m\\\\x0anext'
    """
    return truncate(escape_controls(str(text)), limit)


def truncate(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


def markdown_text(text: object, limit: int | None = 500) -> str:
    """Stored text safe inside markdown (a table cell, a heading, a list item): controls escaped, HTML special
    characters as entities, markdown punctuation that could start emphasis, code, math, a link or an image
    backslash-escaped, at most ``limit`` characters. ``|`` is left to :func:`markdown_cell` (tables).

    >>> markdown_text("fmnist_standard"), markdown_text("<script>x</script> [a](javascript:b) $\\\\foo{$")
    ('fmnist_standard', '&lt;script&gt;x&lt;/script&gt; \\\\[a\\\\](javascript:b) \\\\$\\\\\\\\foo{\\\\$')
    """
    text = terminal(text, limit)
    text = _MARKDOWN.sub(lambda m: "\\" + m.group(), text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_cell(cell: object) -> str:
    """One markdown table cell as written (stored text in it went through :func:`markdown_text`), made unable to
    end its row or add a column: ``|`` escaped, control characters (newlines) shown as escapes.

    >>> markdown_cell("a|b\\nc")
    'a\\\\|b\\\\x0ac'
    """
    return terminal(cell, None).replace("|", "\\|")


def html_text(text: object, limit: int | None = 2000) -> str:
    """Stored text safe as HTML element content or a quoted attribute value.

    >>> html_text('<img src=x onerror="alert(1)">')
    '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'
    """
    return html.escape(terminal(text, limit), quote=True)


def plot_text(text: object, limit: int = 40) -> str:
    """Stored text for a matplotlib label: one line of at most ``limit`` characters (harness.report.figures turns
    mathtext off, so a name such as ``$\\foo{$`` is drawn as written instead of failing the figure)."""
    return terminal(text, limit)
