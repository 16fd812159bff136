"""leaderboard.md from the database: analyse (harness.report.analysis), plot, render (harness.report.markdown)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.orm import Session

from harness import store
from harness.report.analysis import analyse
from harness.report.markdown import Files, render
from harness.report.plots import scatter_plot
from harness.store.files import files_root, write_text_atomic

__all__ = ["Files", "build_leaderboard", "write_leaderboard"]


def build_leaderboard(s: Session, files: Files | None = None) -> str:
    """The leaderboard text for everything completed in the database, with imported reported entries; with
    ``files``, run figures are linked and the scatter plots written under ``files.root / "plots"`` (beside the
    output instead when the database's directory is read-only)."""
    boards = analyse(s)
    plots = {}
    if files is not None:
        where = files.root if os.access(files.root, os.W_OK) else files.out.resolve().parent
        for i, board in enumerate(boards):
            has_detail = any(board.detail_pairs)
            if board.entries and has_detail and (plot := scatter_plot(board, where / "plots")) is not None:
                plots[i] = plot
    return render(boards, files, plots)


def write_leaderboard(db: str, out: Path) -> Path:
    """Regenerate ``out`` from the database at ``db`` (atomically)."""
    root = files_root(db)
    files = None if root is None else Files(out=out, root=root)
    with store.transaction(store.open_database(db, create=False)) as s:
        text = build_leaderboard(s, files)
    return write_text_atomic(out, text)
