"""End to end through the CLI: a small standard AutoAttack run, stored, listed, exported and re-imported."""

import json
import sqlite3

import pytest

from harness.data import DEBIAN_FASHION_MNIST
from harness.worker import forkserver
from metrics.bounds import BOUNDS
from metrics.controls import CONTROLS
from tests.conftest import SUBMISSIONS, run_cli

SMALL_SUITE = ["--methods", "saliency", "--metrics", "sparseness,abpc"]


def _examples(db_path):
    """(idx, label, clean_pred, adv_pred, clean_correct, robust_correct, perturbation) rows."""
    with sqlite3.connect(db_path) as con:
        return con.execute(
            "SELECT idx, label, clean_pred, adv_pred, clean_correct, robust_correct, perturbation "
            "FROM examples ORDER BY idx"
        ).fetchall()


@pytest.mark.slow
def test_small_standard_run_end_to_end(tmp_path, data_dir):
    """From a data directory that does not exist yet (a fresh clone): the parent unpacks Debian's Fashion-MNIST
    into it, and the sandboxed worker must still be allowed to read it."""
    if not (DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("needs Debian's dataset-fashion-mnist package")
    db = tmp_path / "r.db"
    url = f"sqlite:///{db}"
    fresh = tmp_path / "not-yet" / "data"
    args = [
        "run",
        "--model",
        str(SUBMISSIONS / "fmnist_standard.py"),
        "--n-examples",
        "12",
        "--quiet",
        "--db",
        url,
        "--data-dir",
        str(fresh),
        *SMALL_SUITE,
        "--reliability",
        "--n-explain",
        "4",  # reliability perturbs and re-explains every explained image: its cost grows with n_explain
    ]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "stored run" in first.stdout and "robust accuracy" in first.stdout

    listed = run_cli("results", "--json", "--db", url)
    assert listed.returncode == 0, listed.stderr
    (record,) = json.loads(listed.stdout)
    assert record["model"] == "fmnist_standard"
    assert (record["dataset"], record["threat_model"], record["eps_text"]) == ("fashion-mnist", "Linf", "0.1")
    assert record["attack"] == "standard" and record["seed"] == 0 and record["n_examples"] == 12
    assert record["status"] == "complete"
    # controls in every run; --reliability adds MetaQuantus reliability of both headline metrics (no attributions);
    # ABPC, a perturbation-curve metric, has the model's floor and ceiling (the bounds, no attributions either)
    assert set(record["metrics"]) == {"saliency", *CONTROLS, *BOUNDS, "reliability"}
    for method in record["metrics"]:  # both are headline metrics, so the controls are scored with them too
        assert set(record["metrics"][method]) == ({"abpc"} if method in BOUNDS else {"sparseness", "abpc"})
    for score in record["metrics"]["reliability"].values():
        d = score["details"]
        # the verdict is the parent's, recomputed from the criteria against the noise metric's null
        assert 0 <= score["mean"] <= 1 and d["reliable"] == (d["status"] == "reliable")
        assert d["status"] in ("reliable", "not reliable") and set(d["thresholds"]) == {
            "noise_resilience",
            "adversary_reactivity",
        }
    gini = record["metrics"]["saliency"]["sparseness"]
    assert gini["n"] == 4 and 0 < gini["mean"] < 1 and gini["ci_low"] <= gini["mean"] <= gini["ci_high"]
    assert record["versions"]["pyautoattack"] == "0.2.0" and record["versions"]["torch"]
    examples = _examples(db)
    assert len(examples) == 12
    clean = sum(e[4] for e in examples) / 12
    robust = sum(e[5] for e in examples) / 12
    assert record["clean_acc"] == clean and record["robust_acc"] == robust
    assert robust <= clean and robust <= 1 / 12  # the standard model is not robust at eps 0.1
    assert all(e[6] <= 0.1 + 1e-6 for e in examples)

    # an identical configuration is reused, not recomputed
    again = run_cli(*args)
    assert again.returncode == 0 and f"reused identical completed run {record['run_id']}" in again.stdout

    # lossless round trip through the archive format into a fresh database
    out = run_cli("export", "--run", record["run_id"], "--db", url, "--out", str(tmp_path / "archive"))
    assert out.returncode == 0, out.stderr
    db2 = tmp_path / "copy.db"
    imported = run_cli("import", str(tmp_path / "archive"), "--db", f"sqlite:///{db2}")
    assert "imported 1 new run(s)" in imported.stdout
    (copied,) = json.loads(run_cli("results", "--json", "--db", f"sqlite:///{db2}").stdout)
    assert (record["kind"], copied["kind"]) == ("measured", "imported")  # verified, but not measured here
    assert {**copied, "kind": "measured"} == record
    assert _examples(db2) == examples
    assert "imported 0 new run(s)" in run_cli("import", str(tmp_path / "archive"), "--db", f"sqlite:///{db2}").stdout


@pytest.mark.slow
def test_same_inputs_same_numbers(tmp_path, data_dir, monkeypatch):
    """Two fresh runs of the robust model with one seed give identical per-example results: the first with workers
    forked by the fork server (harness.worker.forkserver), the second with fresh interpreters."""
    results = []
    for i in range(2):
        if i == 1:
            monkeypatch.setenv(forkserver.OFF_VARIABLE, "0")
        db = tmp_path / f"{i}.db"
        proc = run_cli(
            "run",
            "--model",
            str(SUBMISSIONS / "fmnist_pgd_linf.py"),
            "--n-examples",
            "6",
            "--n-explain",
            "3",
            "--attack",
            "apgd-ce",
            "--quiet",
            "--db",
            f"sqlite:///{db}",
            "--data-dir",
            str(data_dir),
            *SMALL_SUITE,
        )
        assert proc.returncode == 0, proc.stderr
        with sqlite3.connect(db) as con:
            scores = con.execute('SELECT method, metric, "values" FROM metrics ORDER BY 1, 2').fetchall()
        results.append((_examples(db), scores))
    assert results[0] == results[1]
    # saliency and the five controls x 2 metrics, and abpc's floor and ceiling (sparseness is not a curve)
    assert len(results[0][1]) == 6 * 2 + 2 and {(m, k) for m, k, _ in results[0][1]} >= {
        ("saliency", "sparseness"),
        ("control_edges", "abpc"),
        ("bound_floor", "abpc"),
        ("bound_ceiling", "abpc"),
    }
