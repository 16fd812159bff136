"""Reuse, resume or start a run (open_run), finish and fail it: the decisions against a real SQLite database,
without a worker (the runs' rows are written here as the attack and explain stages would)."""

from __future__ import annotations

import pytest

from harness import store
from harness.core.config import RunConfig
from harness.core.errors import HarnessError
from harness.pipeline.lifecycle import fail, finish, open_run
from harness.pipeline.plan import RunPlan
from harness.pipeline.resolve import check_options, resolve
from harness.pipeline.scores import metric_record
from harness.pipeline.source import locate
from tests.conftest import SUBMISSIONS

MODEL = SUBMISSIONS / "fmnist_standard.py"
METADATA = {"name": "m", "dataset": "fashion-mnist", "architecture": "gap-cnn"}
SUITE = {"methods": "saliency", "metrics": "sparseness", "featurevis": False}


@pytest.fixture
def sessions(tmp_path):
    return store.open_database(f"sqlite:///{tmp_path / 'runs.db'}")


def _plan(data_dir, **options) -> RunPlan:
    config = RunConfig(model=MODEL, data_dir=data_dir, n_examples=6, batch_size=4, attack="apgd-ce", **options)
    return resolve(check_options(config), METADATA, source=locate(model=MODEL), data_dir=data_dir)


def _open(sessions, plan: RunPlan):
    model_id = store.ensure_model(
        sessions, name="m", source=plan.source.source, file_sha256="f" * 64, weights_sha256=None, info=METADATA
    )
    with store.transaction(sessions) as s:
        return open_run(s, s.get(store.ModelRecord, model_id), plan, device="cpu", sandbox={"trusted": True})


def _attack(sessions, run_id: str, chunks) -> None:
    """Store the chunks' examples and AutoAttack logs, as the attack stage does."""
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        logs = dict(run.details["autoattack"]["chunks"])
        for start, end in chunks:
            for i in range(start, end):
                s.add(
                    store.ExampleRecord(
                        run_id=run_id,
                        idx=i,
                        label=i % 10,
                        clean_pred=i % 10,
                        adv_pred=(i + int(i % 2 == 0)) % 10,  # the even examples are broken by the attack
                        clean_correct=True,
                        robust_correct=i % 2 == 1,
                        perturbation=0.1,
                    )
                )
            logs[str(start)] = {
                "n": end - start,
                "accuracy_after": {"clean": 1.0, "apgd-ce": 0.5},
                "warnings": [],
                # the fresh worker's verification (harness.pipeline.fresh), agreeing everywhere
                "probe": {"points": 5 * (end - start), "disagreements": 0, "ties": 0},
            }
        run.details = {**run.details, "autoattack": {**run.details["autoattack"], "chunks": logs}}


def _score(sessions, run_id: str, pairs) -> None:
    with store.transaction(sessions) as s:
        for method, metric in pairs:
            s.add(metric_record(run_id, method, metric, [0.25, 0.5, 0.75], {}))


def _run(sessions, run_id: str) -> store.RunRecord:
    with store.transaction(sessions) as s:
        run = s.get(store.RunRecord, run_id)
        s.expunge(run)
        return run


def test_a_new_run_is_started_with_every_chunk_and_the_suite(sessions, data_dir):
    plan = _plan(data_dir, **SUITE)
    todo = _open(sessions, plan)
    assert (todo.chunks, todo.suite, todo.reused, todo.resumed) == ([(0, 4), (4, 6)], plan.suite, False, False)
    run = _run(sessions, todo.run_id)
    assert run.status == store.RUNNING and run.config_key == plan.resolved.key()
    assert run.config == {
        "dataset": "fashion-mnist",
        "threat_model": "Linf",
        "eps": 0.1,
        "eps_text": "0.1",
        "n_examples": 6,
        "attack": "apgd-ce",
        "seed": 0,
        "batch_size": 4,
        "device": "cpu",
        "data_dir": str(data_dir),
        "trusted": False,
    }
    assert run.details["interpretability"]["settings"]["n_explain"] == 6 and run.provenance["sandbox"] == {
        "trusted": True
    }
    # a second process asking for the same run while this one computes it is refused
    with pytest.raises(HarnessError, match=f"an identical run {todo.run_id} is in progress"):
        _open(sessions, plan)


def test_an_interrupted_run_is_resumed_with_the_chunks_it_lacks(sessions, data_dir):
    plan = _plan(data_dir, **SUITE)
    first = _open(sessions, plan)
    _attack(sessions, first.run_id, [(0, 4)])
    fail(sessions, first.run_id, KeyboardInterrupt())
    assert _run(sessions, first.run_id).status == store.INTERRUPTED
    todo = _open(sessions, plan)
    assert (todo.run_id, todo.chunks, todo.resumed, todo.reused) == (first.run_id, [(4, 6)], True, False)
    assert todo.suite == plan.suite and _run(sessions, first.run_id).status == store.RUNNING


def test_a_completed_identical_run_is_reused_and_gets_only_the_scores_it_lacks(sessions, data_dir):
    plan = _plan(data_dir, **SUITE)
    todo = _open(sessions, plan)
    _attack(sessions, todo.run_id, todo.chunks)
    run = finish(sessions, todo.run_id, todo, plan.resolved, METADATA, [], {"attack": 1.5})
    assert (run.status, run.clean_acc, run.robust_acc) == (store.COMPLETE, 1.0, 0.5)
    assert run.details["autoattack"]["accuracy_after"] == {"clean": 1.0, "apgd-ce": 0.5}
    again = _open(sessions, plan)
    assert (again.run_id, again.chunks, again.reused) == (todo.run_id, [], True)
    assert again.suite == plan.suite  # no score stored yet: the explain stage adds them to the completed run
    _score(sessions, todo.run_id, plan.suite.pairs())
    done = _open(sessions, plan)
    assert (done.run_id, done.chunks, done.suite, done.reused) == (todo.run_id, [], None, True)
    # --rescore drops the scores and recomputes the whole suite; the attack results stay
    rescored = _open(sessions, _plan(data_dir, rescore=True, **SUITE))
    assert (rescored.run_id, rescored.chunks, rescored.suite) == (todo.run_id, [], plan.suite)
    run = _run(sessions, todo.run_id)
    assert "rescored" in run.details and run.clean_acc == 1.0
    with store.transaction(sessions) as s:
        assert s.get(store.RunRecord, todo.run_id).metrics == []
    # scores with other suite settings cannot be added to a run that records these
    with pytest.raises(HarnessError, match="holds interpretability scores computed with other settings"):
        _open(sessions, _plan(data_dir, n_sanity=4, **SUITE))


def test_another_configuration_or_fresh_makes_a_new_run(sessions, data_dir):
    plan = _plan(data_dir, metrics="none", featurevis=False)
    todo = _open(sessions, plan)
    _attack(sessions, todo.run_id, todo.chunks)
    finish(sessions, todo.run_id, todo, plan.resolved, METADATA, [], {})
    assert _open(sessions, plan).reused
    others = [_plan(data_dir, metrics="none", featurevis=False, **change) for change in ({"seed": 1}, {"eps": "0.05"})]
    others.append(_plan(data_dir, metrics="none", featurevis=False, fresh=True))
    ids = set()
    for other in others:
        new = _open(sessions, other)
        assert not new.reused and not new.resumed and new.chunks == [(0, 4), (4, 6)] and new.suite is None
        ids.add(new.run_id)
    assert len(ids) == 3 and todo.run_id not in ids
    # the sweep a run belongs to is recorded on it
    tagged = _open(
        sessions, _plan(data_dir, metrics="none", featurevis=False, seed=7, sweep={"id": "s", "entry": "e", "key": "k"})
    )
    assert _run(sessions, tagged.run_id).details["sweeps"] == {"s": {"entry": "e", "key": "k"}}


def test_a_failed_run_records_its_error(sessions, data_dir):
    plan = _plan(data_dir, metrics="none", featurevis=False)
    todo = _open(sessions, plan)
    fail(sessions, todo.run_id, ValueError("boom"))
    run = _run(sessions, todo.run_id)
    assert (run.status, run.error, run.owner_pid) == (store.FAILED, "ValueError: boom", None)
    # a failed run is not resumed: the same configuration starts a new one
    assert _open(sessions, plan).run_id != todo.run_id
