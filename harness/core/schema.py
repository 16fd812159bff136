"""The primitives of every schema the parent checks untrusted data with: a worker's messages
(harness.pipeline.validate), a submission's METADATA (harness.pipeline.metadata), an archived run
(harness.pipeline.imports) and a RobustBench model_info file (harness.store.robustbench).

Model names, text without control or reordering characters, finite numbers in a range, bounded nesting, and JSON
that is parsed without recursion errors or non-finite constants. Imports nothing heavy (no torch), so every layer
may use it; messages name the problem with the value shown escaped (``ascii``), never raw.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# RobustBench's model-id alphabet (its 206 zoo ids use exactly these characters): model names are ASCII letters,
# digits, "_" and "-", starting with a letter or digit, at most 64 characters. They also become file names (exports)
# and labels (reports), so nothing else is allowed: no look-alike letters, no dots, no spaces.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
NAME_RULE = "1-64 ASCII letters, digits, '_' or '-' (RobustBench's model-id alphabet), starting with a letter or digit"
# C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text (bidi overrides and
# isolates, zero-width characters, the BOM, line and paragraph separators)
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
MAX_DEPTH = 12  # the deepest legitimate message or record nests 5 levels


def escape_controls(text: str) -> str:
    """``text`` with every :data:`CONTROL` character shown as a ``\\xNN``/``\\uNNNN`` escape (one line that cannot
    move the cursor, draw, reorder or hide text).

    >>> escape_controls("stored run \\r99%\\u202e\\u2028")
    'stored run \\\\x0d99%\\\\u202e\\\\u2028'
    """
    return CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class SchemaError(ValueError):
    """A value that does not pass its schema; the message names where it was found and what is wrong."""


def shown(value: Any, limit: int = 80) -> str:
    """``value`` as one safe, bounded piece of an error message (``ascii``: controls and non-ASCII escaped).

    >>> shown("fmnist_l\\u0456nf"), shown("a\\rb" * 50, 4)
    ("'fmnist_l\\\\u0456nf'", "'a\\\\rba…'")
    """
    text = value if isinstance(value, str) else repr(value)
    text = text[: limit + 1]
    quoted = ascii(text[:limit])
    return quoted[:-1] + "…'" if len(text) > limit and quoted.endswith("'") else quoted


def is_name(value: Any) -> bool:
    """Whether ``value`` is a model name (:data:`NAME`)."""
    return isinstance(value, str) and NAME.fullmatch(value) is not None


def name(value: Any, where: str) -> str:
    """``value`` if it is a model name, else a :class:`SchemaError` naming ``where``."""
    if not is_name(value):
        raise SchemaError(f"{where} {shown(value)} is not {NAME_RULE}")
    return value


def text(value: Any, where: str, limit: int, *, required: bool = False) -> str:
    """``value`` if it is text of at most ``limit`` characters without control characters, else a
    :class:`SchemaError` naming ``where``."""
    if not isinstance(value, str) or (required and not value.strip()):
        raise SchemaError(f"{where} must be {'non-empty ' if required else ''}text")
    if len(value) > limit:
        raise SchemaError(f"{where} is {len(value)} characters long (at most {limit})")
    if CONTROL.search(value):
        raise SchemaError(f"{where} contains control characters")
    return value


def number(value: Any, where: str, low: float, high: float) -> float:
    """``value`` if it is a finite int or float (not a bool) in ``[low, high]``, else a :class:`SchemaError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SchemaError(f"{where} must be a finite number, not {shown(value, 40)}")
    if not low <= value <= high:
        raise SchemaError(f"{where} {value!r} is outside [{low:g}, {high:g}]")
    return value


def integer(value: Any, where: str, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) in ``[low, high]``, else a :class:`SchemaError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError(f"{where} must be an integer, not {shown(value, 40)}")
    if not low <= value <= high:
        raise SchemaError(f"{where} {value!r} is outside [{low}, {high}]")
    return value


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and dicts nest in ``value`` (iteratively: no recursion limit to hit), counted up to
    ``limit + 1``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        if level <= limit:
            stack.extend((child, level + 1) for child in item)
    return deepest


def load_json(raw: str | bytes, *, max_depth: int = MAX_DEPTH, object_hook: Any = None) -> Any:
    """Parse JSON that an untrusted party wrote: ``NaN``/``Infinity`` refused, nesting deeper than ``max_depth``
    refused (also where it would exhaust the parser's recursion), every failure one :class:`SchemaError`.

    >>> load_json('{"a": [1, 2]}')
    {'a': [1, 2]}
    >>> load_json("[" * 100000)
    Traceback (most recent call last):
    ...
    harness.core.schema.SchemaError: not JSON (nested too deeply: RecursionError)
    """

    def constant(word: str) -> Any:
        raise SchemaError(f"not JSON: the non-finite constant {word} is not allowed")

    try:
        value = json.loads(raw, parse_constant=constant, object_hook=object_hook)
    except RecursionError:
        raise SchemaError("not JSON (nested too deeply: RecursionError)") from None
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        if isinstance(exc, SchemaError):
            raise
        raise SchemaError(f"not JSON ({type(exc).__name__}: {shown(str(exc), 120)})") from None
    if depth(value, max_depth) > max_depth:
        raise SchemaError(f"nested deeper than {max_depth} levels")
    return value
