"""Resolving a run, without a worker: the options are parsed once (check_options), then completed from the
submission's METADATA and the data set's defaults (resolve) into the plan every stage takes its parts from."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

import pytest

import harness.pipeline.resolve as resolve_module
from harness.core.config import RunConfig
from harness.core.errors import HarnessError
from harness.pipeline.plan import RunPlan
from harness.pipeline.resolve import check_options, resolve
from harness.pipeline.source import locate
from harness.worker.protocol import check_request, encode, load_request
from tests.conftest import SUBMISSIONS

MODEL = SUBMISSIONS / "fmnist_standard.py"
FMNIST = {"name": "m", "dataset": "fashion-mnist", "architecture": "gap-cnn"}
QUIET = {"metrics": "none", "featurevis": False}  # no training split needed: nothing reads it


def _plan(data_dir: Path, metadata: dict | None = None, **options) -> RunPlan:
    request = check_options(RunConfig(model=MODEL, data_dir=data_dir, **{**QUIET, **options}))
    return resolve(request, metadata or FMNIST, source=locate(model=MODEL), data_dir=data_dir)


def _threat(plan: RunPlan) -> tuple[str, float, str]:
    return plan.resolved.threat_model, plan.resolved.eps, plan.resolved.eps_text


def test_defaults_come_from_the_options_then_metadata_then_the_data_set(data_dir):
    assert _threat(_plan(data_dir)) == ("Linf", 0.1, "0.1")  # Fashion-MNIST's standard threat model
    assert _threat(_plan(data_dir, threat_model="l2")) == ("L2", 1.5, "1.5")  # its L2 eps; the spelling canonical
    robust = {**FMNIST, "threat_model": "L2", "eps": "1"}
    assert _threat(_plan(data_dir, robust)) == ("L2", 1.0, "1")  # METADATA's threat model and eps
    assert _threat(_plan(data_dir, robust, eps="0.5")) == ("L2", 0.5, "0.5")  # --eps wins
    # METADATA's eps belongs to its threat model: with another --threat-model the data set's eps is used
    assert _threat(_plan(data_dir, robust, threat_model="Linf")) == ("Linf", 0.1, "0.1")
    assert _threat(_plan(data_dir, {**FMNIST, "eps": "8/255"})) == ("Linf", 8 / 255, "8/255")


def test_the_plan_holds_what_fixes_the_numbers_and_the_parts_the_stages_take(data_dir):
    plan = _plan(data_dir, n_examples=40, seed=3, batch_size=16, attack="APGD-CE, apgd-t ")
    r = plan.resolved
    assert (r.dataset, r.n_examples, r.seed, r.batch_size, r.attack) == ("fashion-mnist", 40, 3, 16, "apgd-ce, apgd-t")
    assert plan.attack.attacks == ("apgd-ce", "apgd-t") and plan.budgets.units == 2 and plan.budgets.scale == 1
    assert plan.dataset.num_classes == 10 and plan.data_dir == data_dir and plan.source.submission == MODEL.resolve()
    assert plan.suite is None and plan.featurevis is None and not plan.auto_batch
    auto = _plan(data_dir, batch_size="auto")
    assert auto.auto_batch and auto.resolved.batch_size == 250  # the default chunk
    assert _plan(data_dir, batch_size="auto", chunk_size=32).resolved.batch_size == 32
    # the key identifies identical runs: the chunk is in it, the device and the database are not
    assert (
        plan.resolved.key()
        != _plan(data_dir, n_examples=40, seed=3, batch_size=8, attack="apgd-ce, apgd-t").resolved.key()
    )
    same = _plan(data_dir, n_examples=40, seed=3, batch_size=16, attack="apgd-ce, apgd-t", db="sqlite:////x.db")
    assert same.resolved.key() == plan.resolved.key()


def test_suite_and_feature_visualisation_are_resolved(data_dir):
    plan = _plan(data_dir, metrics="sparseness,abpc", methods="saliency", n_examples=20, n_explain=100)
    assert plan.suite.methods == ("saliency",) and plan.suite.metrics == ("sparseness", "abpc")
    assert plan.suite.n_explain == 20  # at most the images evaluated
    assert plan.featurevis is None
    on = _plan(data_dir, featurevis=True, featurevis_options=("inversion_steps=7",), n_examples=20)
    assert on.featurevis.inversion_steps == 7 and on.featurevis.n_inversion == 20 and on.featurevis.seed == 0


def test_each_option_is_parsed_once_and_suite_and_featurevis_resolved_once(data_dir, monkeypatch):
    """check_options parses eps, the threat model, the data set and the attack; resolve never parses them again;
    the suite and the feature visualisation are resolved once per run."""
    calls: dict[str, int] = {}

    def counted(name):
        original = getattr(resolve_module, name)

        def wrapper(*args, **kwargs):
            calls[name] = calls.get(name, 0) + 1
            return original(*args, **kwargs)

        monkeypatch.setattr(resolve_module, name, wrapper)

    for name in (
        "parse_eps",
        "parse_threat_model",
        "get_dataset",
        "parse_attack",
        "resolve_suite",
        "resolve_featurevis",
    ):
        counted(name)
    config = RunConfig(
        model=MODEL, data_dir=data_dir, dataset="fashion-mnist", eps="0.2", threat_model="Linf", metrics="sparseness"
    )
    request = check_options(config)
    resolve(request, FMNIST, source=locate(model=MODEL), data_dir=data_dir)
    assert calls == {
        "parse_eps": 1,
        "parse_threat_model": 1,
        "get_dataset": 1,
        "parse_attack": 1,
        "resolve_suite": 1,
        "resolve_featurevis": 1,
    }
    calls.clear()
    resolve(check_options(RunConfig(model=MODEL, **QUIET)), FMNIST, source=locate(model=MODEL), data_dir=data_dir)
    # the defaults: METADATA names the data set (looked up once), the data set's threat model and eps parsed once
    assert calls["get_dataset"] == calls["parse_eps"] == calls["parse_threat_model"] == 1


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"model": None}, "give exactly one of --model FILE and --robustbench MODEL_ID"),
        ({"robustbench": "Wong2020Fast"}, "give exactly one of --model FILE and --robustbench MODEL_ID"),
        ({"model": None, "robustbench": "Wong2020Fast"}, "--robustbench needs --dataset"),
        ({"eps": "1/0"}, "malformed eps '1/0'"),
        ({"dataset": "fmnist"}, "unknown data set 'fmnist'"),
        ({"threat_model": "L1"}, "unknown threat model 'L1'"),
        ({"attack": "pgd"}, "unknown attack 'pgd'"),
        ({"n_examples": 0}, "--n-examples 0 must be positive"),
        ({"batch_size": 0}, "--batch-size 0 must be positive or auto"),
        ({"chunk_size": 0}, "--chunk-size 0 must be positive"),
        ({"stall_timeout": 0}, "timeouts must be positive"),
        ({"device": "gpu0"}, "--device 'gpu0' is not a device"),
        ({"metrics": "nope"}, "unknown metric 'nope'"),
        ({"featurevis": True, "featurevis_options": ("nope=1",)}, "--featurevis-option 'nope=1'"),
    ],
)
def test_bad_options_fail_before_anything_starts(options, problem):
    with pytest.raises(HarnessError) as err:
        check_options(RunConfig(**{"model": MODEL, **options}))
    assert problem in err.value.problem and err.value.fix


def test_what_only_metadata_can_decide_fails_in_resolve(data_dir):
    with pytest.raises(HarnessError, match="the submission is for fashion-mnist, not cifar10"):
        _plan(data_dir, dataset="cifar10")
    with pytest.raises(HarnessError, match="unknown data set 'mnist'"):
        _plan(data_dir, {**FMNIST, "dataset": "mnist"})
    with pytest.raises(HarnessError, match=r"eps 2 is out of range for Linf on inputs in \[0,1\]"):
        _plan(data_dir, {**FMNIST, "eps": "2"})


def test_the_worker_is_told_nothing_of_the_database_or_the_run_around_it(data_dir):
    """The serialized worker configuration (load and check requests) of a run whose --db holds a password has no
    trace of the URL, of the sweep, or of the parent's own settings (fresh, rescore, timeouts, limits)."""
    url = "postgresql+psycopg://dbuser7:S3cretPassw0rd@db-host-9.example:5433/resultsdb"
    sweep = {"id": "sweep-abcdef1234", "entry": "entry-xyz", "key": "0123456789abcdef"}
    config = RunConfig(
        model=MODEL,
        data_dir=data_dir,
        db=url,
        sweep=sweep,
        fresh=True,
        rescore=True,
        timeout=12345.0,
        stall_timeout=777.0,
        memory_limit="3G",
        cpu_limit=4321,
        **QUIET,
    )
    request = check_options(config)
    plan = resolve(request, FMNIST, source=locate(model=MODEL), data_dir=data_dir)
    root = Path("/tmp/robint-worker-copy")
    assert request.worker(plan.source, root) == plan.worker(root)
    sent = encode(load_request(plan.worker(root))) + encode(check_request(plan.worker_run()))
    for secret in ("dbuser7", "S3cretPassw0rd", "db-host-9", "5433", "resultsdb", "postgresql", "psycopg"):
        assert secret not in sent
    for other in ("sweep-abcdef1234", "entry-xyz", "0123456789abcdef", "12345", "777", "3G", "4321"):
        assert other not in sent
    for key in ("fresh", "rescore", "timeout", "db", "sweep", "trusted", "memory", "cpu"):
        assert f'"{key}' not in sent
    load = json.loads(encode(load_request(plan.worker(root))))
    check = json.loads(encode(check_request(plan.worker_run())))
    assert load == {
        "op": "load",
        "config": {
            "model": {
                "submission": str(root / MODEL.name),  # its private copy of the submission (source.ModelFiles)
                "robustbench": None,
                "dataset": None,
                "threat_model": None,
                "model_dir": None,
            },
            "device": "auto",
            "progress": True,
        },
    }
    assert check == {
        "op": "check",
        "run": {
            "dataset": "fashion-mnist",
            "n_examples": 1000,
            "threat_model": "Linf",
            "eps": 0.1,
            "attack": "standard",
            "seed": 0,
            "chunk": 250,
        },
    }
    assert math.isfinite(plan.budgets.total([(0, 250)], None, None, 10))
    assert {f.name for f in fields(plan)} >= {"storage", "limits"}  # the parent keeps them
    assert plan.storage.db == url and plan.storage.sweep == sweep and plan.limits.timeout == 12345.0
