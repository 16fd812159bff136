"""Archived runs' figures follow them into the database they are imported into (harness/store/archive.py,
copy_archived_figures): from runs/<run id>/ beside the archive's folder to runs/ beside the database."""

from __future__ import annotations

import json

from harness.store.archive import copy_archived_figures


def test_figures_beside_an_archive_are_copied_once_and_hostile_ids_are_not_paths(tmp_path):
    archive = tmp_path / "results" / "archive"
    archive.mkdir(parents=True)
    for run_id in ("abc123", "def456", "../../escape"):
        (archive / f"{run_id.replace('/', '_')}.json").write_text(json.dumps({"run": {"id": run_id}}))
    (archive / "broken.json").write_text("{not json")
    figures = tmp_path / "results" / "runs" / "abc123"
    figures.mkdir(parents=True)
    (figures / "attributions.png").write_bytes(b"png")
    (tmp_path / "results" / "escape").mkdir()  # what "../../escape" would reach
    (tmp_path / "results" / "escape" / "secret.png").write_bytes(b"x")
    target = tmp_path / "elsewhere" / "runs"
    assert copy_archived_figures([archive], target) == 1  # def456 has none beside the archive
    assert (target / "abc123" / "attributions.png").read_bytes() == b"png"
    assert sorted(p.name for p in target.iterdir()) == ["abc123"]
    assert copy_archived_figures([archive / "abc123.json"], target) == 0  # already there: left as it is
    # importing into the database beside the archive itself copies nothing onto itself
    assert copy_archived_figures([archive], tmp_path / "results" / "runs") == 0
