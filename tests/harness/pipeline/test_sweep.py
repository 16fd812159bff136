"""``robint-bench sweep`` with submitit's local executor: one job per model into one database; the same command
again skips the complete models and resumes an interrupted one to the same numbers; ``runs --sweep`` shows it."""

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from harness.core.config import RunConfig
from harness.core.errors import HarnessError
from harness.pipeline.sweep import collect_entries, entry_key
from tests.conftest import ROOT, run_cli

LINEAR = (ROOT / "tests" / "bad_inputs" / "submissions" / "good_linear.py").read_text()


@pytest.fixture
def models():
    """Two small submissions in a directory the sandboxed worker can read (it runs as nobody under root)."""
    path = Path(tempfile.mkdtemp(prefix="robint-sweep-"))
    os.chmod(path, 0o755)
    for name in ("linear_a", "linear_b"):
        (path / f"{name}.py").write_text(LINEAR.replace("good_linear", name))
        os.chmod(path / f"{name}.py", 0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _examples(url: str, model: str) -> list[tuple]:
    engine = create_engine(url)
    with engine.connect() as con:
        out = con.execute(
            text(
                "SELECT e.idx, e.clean_pred, e.adv_pred, e.perturbation FROM examples e JOIN runs r ON r.id = e.run_id "
                "JOIN models m ON m.id = r.model_id WHERE m.name = :m ORDER BY e.idx"
            ),
            {"m": model},
        ).all()
    engine.dispose()
    return [tuple(row) for row in out]


@pytest.mark.slow
def test_a_sweep_runs_each_model_once_and_a_rerun_resumes_what_is_missing(models, tmp_path, data_dir):
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    args = [
        "sweep",
        str(models / "linear_a.py"),
        str(models / "linear_b.py"),
        "--executor",
        "local",
        "--parallel",
        "2",
        "--n-examples",
        "8",
        "--batch-size",
        "4",
        "--attack",
        "apgd-ce",
        "--metrics",
        "none",
        "--data-dir",
        str(data_dir),
        "--jobs-dir",
        str(tmp_path / "jobs"),
        "--db",
        url,
    ]
    first = run_cli(*args)  # the sweep here; its jobs are processes
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("done  ") == 2 and "stored run" in first.stdout
    sweep_id = first.stdout.split()[1].rstrip(":")
    # feedback while it runs: how to follow it, where each job's log is
    assert f"  follow it from another shell: robint-bench runs --sweep {sweep_id} --db {url}" in first.stdout
    assert first.stdout.count("start linear_") == 2 and f"{tmp_path / 'jobs' / sweep_id}/" in first.stdout
    assert "2 of 2 models complete" in first.stdout.splitlines()[-1]
    complete_a = _examples(url, "linear_a")
    assert len(complete_a) == 8

    # interrupt linear_a's run: its second chunk lost, its owner a process on another host, long silent
    engine = create_engine(url)
    with engine.begin() as con:
        run_a = con.execute(
            text("SELECT r.id FROM runs r JOIN models m ON m.id = r.model_id WHERE m.name = 'linear_a'")
        ).scalar_one()
        con.execute(text("DELETE FROM examples WHERE run_id = :r AND idx >= 4"), {"r": run_a})
        con.execute(
            text(
                "UPDATE runs SET status = 'running', owner_host = 'elsewhere:x', owner_pid = 1, owner_start = 'x', "
                "heartbeat_at = '2020-01-01 00:00:00' WHERE id = :r"
            ),
            {"r": run_a},
        )
    engine.dispose()
    progress = run_cli("runs", "--sweep", sweep_id, "--db", url).stdout
    assert "1 of 2 models complete, 1 interrupted" in progress and "examples 4/8" in progress

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert "skip  linear_b: complete run" in again.stdout
    assert f"done  linear_a: resumed run {run_a}" in again.stdout
    assert _examples(url, "linear_a") == complete_a  # the lost chunk recomputed to the same numbers
    final = run_cli("runs", "--sweep", sweep_id, "--db", url).stdout
    assert final.splitlines()[-1] == f"sweep {sweep_id}: 2 of 2 models complete"
    results = json.loads(run_cli("results", "--json", "--db", url).stdout)
    assert sorted(r["model"] for r in results) == ["linear_a", "linear_b"]


def test_a_config_file_and_its_errors(tmp_path, models):
    config = tmp_path / "sweep.json"
    config.write_text(
        json.dumps(
            {
                "name": "demo",
                "run": {"n_examples": 16, "attack": "apgd-ce"},
                "models": [str(models / "linear_a.py"), {"model": str(models / "linear_b.py"), "run": {"seed": 3}}],
                "slurm": {"partition": "gpu", "gpus": 2},
            }
        )
    )
    entries, options = collect_entries(config_file=config, settings={"metrics": "none", "n_sanity": 3})
    assert [e.name for e in entries] == ["linear_a", "linear_b"]
    assert [e.config.seed for e in entries] == [0, 3] and {e.config.n_examples for e in entries} == {16}
    assert {e.config.metrics for e in entries} == {"none"} and {e.config.n_sanity for e in entries} == {3}
    assert options == {"partition": "gpu", "gpus": 2, "name": "demo"}
    # the key follows what the run measures, not where it runs
    a = entries[0].config
    assert entry_key(a) == entry_key(RunConfig(**{**a.__dict__, "device": "cuda", "db": "postgresql://x/y"}))
    assert entry_key(a) != entry_key(RunConfig(**{**a.__dict__, "seed": 1}))

    config.write_text(json.dumps({"models": [str(models / "linear_a.py")], "run": {"n_exmples": 3}}))
    with pytest.raises(HarnessError, match="unknown run settings"):
        collect_entries(config_file=config, settings={})
    with pytest.raises(HarnessError, match="twice"):
        collect_entries(submissions=(models / "linear_a.py", models / "linear_a.py"), settings={})


def test_slurm_with_sqlite_is_refused_or_unavailable(tmp_path, models):
    done = run_cli("sweep", str(models / "linear_a.py"), "--executor", "slurm", "--db", f"sqlite:///{tmp_path}/x.db")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert ("SQLite" in done.stderr) if shutil.which("sbatch") else ("slurm" in done.stderr.lower())


def test_the_sweep_command_takes_the_explain_stage_sizes():
    from click.testing import CliRunner

    from harness.cli import cli

    shown = CliRunner().invoke(cli, ["sweep", "--help"]).output
    assert "--n-sanity INTEGER" in shown and "--n-composites INTEGER" in shown and "--n-explain INTEGER" in shown
