"""Archive files (harness/store/archive.py): written as the same gzip bytes each time, read back as their JSON; and
archived runs' figures follow them into the database they are imported into (copy_archived_figures): from
runs/<run id>/ beside the archive's folder to runs/ beside the database."""

from __future__ import annotations

import gzip
import json

from harness import store
from harness.pipeline.imports import import_archives
from harness.store.archive import archive_files, copy_archived_figures, export_run, read_archive
from tests.conftest import ROOT

ARCHIVE = ROOT / "results" / "archive"


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


def test_an_archive_file_is_the_same_gzip_bytes_each_time_and_reads_back_as_its_json(tmp_path):
    """``export`` writes ``<model>-<id>.json.gz`` by default: the indented JSON a ``.json`` path gets, compressed
    with no name or time in the header, so exporting a run again gives the same bytes (git sees no change)."""
    db = f"sqlite:///{tmp_path / 'r.db'}"
    archived = ARCHIVE / "fmnist_standard-8db3ece56b19.json.gz"
    assert import_archives(store.open_database(db), [archived]).added == 1
    sessions = store.open_database(db)
    with store.transaction(sessions) as s:
        first = export_run(s, "8db3ece56b19", tmp_path / "a")
        again = export_run(s, "8db3ece56b19", tmp_path / "b")
        plain = export_run(s, "8db3ece56b19", tmp_path / "plain.json")
    assert first.name == "fmnist_standard-8db3ece56b19.json.gz" and first.read_bytes() == again.read_bytes()
    assert first.read_bytes() == archived.read_bytes()  # the committed file is what export writes
    assert first.read_bytes()[:2] == b"\x1f\x8b" and first.read_bytes()[4:8] == b"\0\0\0\0"  # gzip, time 0
    assert gzip.decompress(first.read_bytes()) == plain.read_bytes() == read_archive(first)[1]
    assert read_archive(plain) == (plain.read_bytes(), plain.read_bytes())
    assert len(first.read_bytes()) < len(plain.read_bytes()) / 4
    assert archive_files([tmp_path / "a", tmp_path / "plain.json", tmp_path / "b"]) == sorted([first, plain, again])
