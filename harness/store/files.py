"""Files beside the database: each run's figures under ``runs/<run id>/`` next to a SQLite file, and atomic
writes of exported text (a crash never leaves a half-written file)."""

from __future__ import annotations

import os
from pathlib import Path


def files_root(db_url: str) -> Path | None:
    """The directory holding ``runs/`` and ``plots/``: beside a SQLite database file (None for other databases)."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve().parent


def run_files_dir(db_url: str, run_id: str) -> Path | None:
    """Where a run's figures go: ``runs/<run id>/`` beside a SQLite database file (None for other databases)."""
    root = files_root(db_url)
    return None if root is None else root / "runs" / run_id


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (creating the parent directory)."""
    return write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename (creating the parent directory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
