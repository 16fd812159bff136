"""``robint-bench import``: every archived record verified before anything of it is stored
(harness/pipeline/imports.py), each file on its own."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from harness import store
from harness.core.errors import HarnessError
from harness.pipeline.imports import import_archives, verified_record
from harness.store.archive import read_archive
from tests.conftest import ROOT

ARCHIVE = ROOT / "results" / "archive"
STANDARD = ARCHIVE / "fmnist_standard-8db3ece56b19.json.gz"


def _write(path: Path, record: dict) -> Path:
    path.write_text(json.dumps(record))
    return path


def _forged(change) -> dict:
    record = json.loads(read_archive(STANDARD)[1])
    change(record)
    return record


def test_the_shipped_archive_verifies_and_is_marked_as_imported():
    record = verified_record(STANDARD)
    assert record["run"]["details"]["imported"]["file"] == STANDARD.name
    assert len(record["run"]["details"]["imported"]["sha256"]) == 64
    assert record["run"]["robust_acc"] == json.loads(read_archive(STANDARD)[1])["run"]["robust_acc"]


def _set(path: str, value):
    def change(record: dict) -> None:
        *keys, last = path.split(".")
        target = record
        for key in keys:
            target = target[int(key)] if isinstance(target, list) else target[key]
        target[last] = value

    return change


FORGED = [
    (_set("run.robust_acc", 0.95), "robust accuracy 0.95 is not its rows' 0 of 1000"),
    (_set("model.name", "fmnist_trades_l\u0456nf"), "model name 'fmnist_trades_l\\u0456nf' is not 1-64 ASCII"),
    (_set("run.n_examples", "many"), "run n_examples must be an integer"),
    (_set("run.clean_acc", 1e308), "clean accuracy 1e+308 is not its rows'"),
    (_set("run.flags", [{"code": "x", "message": "stored run \u202e99.00%"}]), "flag message contains control"),
    (_set("run.config_key", "0" * 64), "config_key is not the hash of its configuration"),
    (_set("run.attack", "autoattack-but-better"), "unknown attack"),
    (_set("run.status", "running"), "is not 'complete'"),
    (_set("model.info.name", "another"), "model info names another model"),
    (_set("model.file_sha256", "x" * 64), "is not a sha256 hex digest"),
    (_set("metrics.0.mean", "high"), "metrics[0] mean must be a finite number"),
    (_set("examples.columns", ["idx"]), "examples columns must be"),
]


@pytest.mark.parametrize(("change", "fragment"), FORGED, ids=range(len(FORGED)))
def test_a_forged_or_damaged_record_is_refused_naming_the_problem(tmp_path, change, fragment):
    path = _write(tmp_path / "forged.json", _forged(change))
    with pytest.raises(HarnessError) as info:
        verified_record(path)
    assert fragment in str(info.value), str(info.value)


def test_malformed_json_is_one_error_and_the_other_files_still_import(tmp_path):
    """Issue 25, cases 6, 11 and 13: deep nesting, NaN, a forged number and a look-alike name each become one error
    naming their file; the good files before and after them are imported, and run rows verify."""
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "a_deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (archive / "b_nan.json").write_text(
        read_archive(STANDARD)[1].decode().replace('"robust_acc": 0.0', '"robust_acc": NaN', 1)
    )
    _write(archive / "c_forged.json", _forged(_set("run.robust_acc", 0.95)))
    shutil.copy(ARCHIVE / "fmnist_pgd_linf-7b056f54c9ff.json.gz", archive / "d_good.json.gz")
    shutil.copy(STANDARD, archive / "0_good.json.gz")
    db = tmp_path / "r.db"
    report = import_archives(store.open_database(f"sqlite:///{db}"), [archive])
    assert (report.added, report.files) == (2, 5)
    lines = [str(e) for e in report.errors]
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert "a_deep.json was not imported: not JSON (nested too deeply: RecursionError)" in lines[0]
    assert "b_nan.json was not imported: not JSON: the non-finite constant NaN is not allowed" in lines[1]
    assert "c_forged.json was not imported: its numbers are not those of its per-example rows" in lines[2]
    with sqlite3.connect(db) as con:
        ids = sorted(r[0] for r in con.execute("SELECT id FROM runs"))
        details = [json.loads(r[0]) for r in con.execute("SELECT details FROM runs")]
    assert ids == ["7b056f54c9ff", "8db3ece56b19"]
    assert sorted(d["imported"]["file"] for d in details) == ["0_good.json.gz", "d_good.json.gz"]


def test_a_name_another_model_holds_is_refused(tmp_path):
    """One name is one model: an archived run of other files under a name the database holds is not imported."""
    sessions = store.open_database(f"sqlite:///{tmp_path / 'r.db'}")
    assert import_archives(sessions, [STANDARD]).added == 1
    impostor = _forged(_set("model.weights_sha256", "ab" * 32))
    impostor["run"]["id"] = "impostor0001"
    report = import_archives(sessions, [_write(tmp_path / "impostor.json", impostor)])
    assert report.added == 0 and "the name 'fmnist_standard' belongs to another model" in str(report.errors[0])
