"""Warnings about the data (e.g. a file that is not the official release) as one plain line on stderr.

Python's ``warnings`` display prints the warning's source line under it (``x, y = info.load(split, root)``), and the
sandboxed worker silences ``UserWarning``; a data warning is neither code nor noise, so it is printed as
``warning: <message>``, once per process.
"""

from __future__ import annotations

import sys

_seen: set[str] = set()


def data_warning(message: str) -> None:
    """Print ``warning: <message>`` on stderr, once per message and process."""
    if message in _seen:
        return
    _seen.add(message)
    print(f"warning: {message}", file=sys.stderr, flush=True)
