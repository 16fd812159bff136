"""A run's stored numbers against its per-example rows (harness/store/verify.py)."""

from __future__ import annotations

import json

import pytest

from harness.store.archive import archive_files, read_archive
from harness.store.verify import rows_problems
from tests.conftest import ROOT

ARCHIVED = ROOT / "results" / "archive" / "fmnist_standard-8db3ece56b19.json.gz"


def _record() -> dict:
    record = json.loads(read_archive(ARCHIVED)[1])
    run = record["run"]
    return {
        "n": run["n_examples"],
        "eps": run["eps"],
        "clean_acc": run["clean_acc"],
        "robust_acc": run["robust_acc"],
        "rows": [tuple(r) for r in record["examples"]["rows"]],
    }


def test_every_archived_run_is_its_rows():
    for path in archive_files([ROOT / "results" / "archive"]):
        record = json.loads(read_archive(path)[1])
        run = record["run"]
        rows = [tuple(r) for r in record["examples"]["rows"]]
        assert (
            rows_problems(
                n=run["n_examples"], eps=run["eps"], clean_acc=run["clean_acc"], robust_acc=run["robust_acc"], rows=rows
            )
            == []
        ), path.name


def _flip(rows: list[tuple], column: int, value) -> list[tuple]:
    first = list(rows[0])
    first[column] = value
    return [tuple(first), *rows[1:]]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda r: {**r, "robust_acc": 0.95}, "robust accuracy 0.95 is not its rows' 0 of 1000"),
        (lambda r: {**r, "clean_acc": 1.0}, "clean accuracy 1.0 is not its rows'"),
        (lambda r: {**r, "robust_acc": float("nan")}, "robust accuracy nan"),
        (lambda r: {**r, "n": "many"}, "n_examples 'many' is not a positive integer"),
        (lambda r: {**r, "rows": r["rows"][:-1]}, "its 999 example rows are not the examples 0..999"),
        (lambda r: {**r, "rows": r["rows"] + r["rows"][-1:]}, "are not the examples 0..999, each once"),
        (lambda r: {**r, "rows": _flip(r["rows"], 5, True)}, "correctness flags contradict"),
        (lambda r: {**r, "rows": _flip(r["rows"], 4, not r["rows"][0][4])}, "correctness flags contradict"),
        (lambda r: {**r, "rows": _flip(r["rows"], 6, 0.5)}, "perturbation 0.5 is not inside the eps-ball"),
        (lambda r: {**r, "rows": _flip(r["rows"], 2, "3")}, "values of the wrong types"),
    ],
    ids=range(10),
)
def test_numbers_that_are_not_the_rows_are_named(change, fragment):
    problems = rows_problems(**change(_record()))
    assert problems and fragment in "; ".join(problems), problems
