"""The notebook API: ``harness.evaluate(model, dataset=...)`` stores the same numbers as ``robint-bench run`` on the
same model and options, reuses its run when called again, and ``import harness`` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import harness
from harness.cli import cli
from harness.core.errors import HarnessError
from harness.worker.submission import load_submission
from tests.conftest import ROOT, SUBMISSIONS

OPTIONS = {"n_examples": 4, "attack": "apgd-ce", "methods": "saliency", "metrics": "sparseness", "n_explain": 4}


def test_same_numbers_as_the_command_line(tmp_path, data_dir):
    db = f"sqlite:///{tmp_path / 'api.db'}"
    args = ["run", "--model", str(SUBMISSIONS / "fmnist_standard.py"), "--trusted", "--quiet", "--db", db]
    args += ["--data-dir", str(data_dir), "--no-featurevis"]
    args += [f"--{key.replace('_', '-')}={value}" for key, value in OPTIONS.items()]
    cli_run = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert cli_run.exit_code == 0, cli_run.output
    (cli_record,) = json.loads(CliRunner().invoke(cli, ["results", "--json", "--db", db]).output)

    model = load_submission(SUBMISSIONS / "fmnist_standard.py").model.train()
    result = harness.evaluate(
        model,
        dataset="fashion-mnist",
        name="notebook",
        db=db,
        data_dir=data_dir,
        featurevis=False,
        progress=False,
        **OPTIONS,
    )
    assert isinstance(result, harness.Result) and not result.reused
    assert model.training  # the caller's training flag is restored
    records = json.loads(CliRunner().invoke(cli, ["results", "--json", "--db", db]).output)
    assert [r["model"] for r in records] == ["fmnist_standard", "notebook"] and records[1] == result.record
    for key in (
        "dataset",
        "threat_model",
        "eps",
        "eps_text",
        "n_examples",
        "seed",
        "attack",
        "clean_acc",
        "robust_acc",
        "autoattack",
        "metrics",
        "flags",
    ):
        assert result.record[key] == cli_record[key], key
    assert (result.clean_acc, result.robust_acc) == (cli_record["clean_acc"], cli_record["robust_acc"])
    assert result.score("saliency", "sparseness").mean == cli_record["metrics"]["saliency"]["sparseness"]["mean"]
    assert result.score("saliency", "sparseness").n == 4

    again = harness.evaluate(
        model,
        dataset="fashion-mnist",
        name="notebook",
        db=db,
        data_dir=data_dir,
        featurevis=False,
        progress=False,
        **OPTIONS,
    )
    assert again.reused and again.run_id == result.run_id  # same class, weights and options: the stored run
    other = load_submission(SUBMISSIONS / "fmnist_pgd_linf.py").model  # the same class, other weights
    with pytest.raises(HarnessError, match="the name 'notebook' belongs to another model"):  # one name, one model
        harness.evaluate(
            other,
            dataset="fashion-mnist",
            name="notebook",
            db=db,
            data_dir=data_dir,
            featurevis=False,
            progress=False,
            **OPTIONS,
        )
    with pytest.raises(HarnessError, match="needs a torch.nn.Module"):
        harness.evaluate("not a model", dataset="fashion-mnist", db=db)


def test_import_harness_stays_light():
    code = "import sys, harness; print(sorted(m for m in ('torch', 'harness.api') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_shared_options_have_the_run_configurations_defaults():
    """The notebook API's options that ``run`` also has default to what ``robint-bench run`` uses (RunConfig)."""
    import dataclasses
    import inspect

    from harness.api import evaluate
    from harness.core.config import RunConfig

    fields = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    parameters = inspect.signature(evaluate).parameters.values()
    shared = {p.name: p.default for p in parameters if p.name in fields and p.default is not p.empty}
    from_preset = {"n_explain", "n_sanity", "n_composites", "metrics", "methods"}  # None: the preset's value
    assert all(shared.pop(name) is None for name in from_preset)
    assert {"attack", "seed", "batch_size", "preset"} <= set(shared)
    assert {name: fields[name] for name in shared} == shared
