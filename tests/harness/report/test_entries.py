"""The board's rows (harness/report/entries.py): reading completed runs, one run per model and board, and the
rows as entries."""

from datetime import datetime, timedelta

import pandas as pd

from harness import store
from harness.report.entries import Entry, left_off, recipe_label, runs_frame, select_rows, to_entries
from harness.report.scores import Score
from tests.harness.report.builders import example_rows

T0 = datetime(2026, 1, 1)


def _row(run_id, model, identity, n, days, robust=0.5, clean=0.9, eps_text="0.1"):
    return {
        "run_id": run_id,
        "model": model,
        "identity": identity,
        "dataset": "fashion-mnist",
        "threat_model": "Linf",
        "eps_text": eps_text,
        "eps": float(eps_text),
        "n": n,
        "robust_acc": robust,
        "clean_acc": clean,
        "created_at": T0 + timedelta(days=days),
    }


def test_select_rows_takes_each_models_largest_then_newest_run_and_never_replaces_a_name():
    """Issue 25, case 7: an impostor's newer, smaller run under a name another model holds replaced that model's
    n=1000 row; the board now chooses per model identity (its row: name and file and weights hashes)."""
    frame = pd.DataFrame(
        [
            _row("a_full", "a", 1, 1000, 0, robust=0.764),
            _row("impostor_demo", "a", 2, 16, 1, robust=0.0),  # another model under the same name: its own row
            _row("b_full", "b", 3, 1000, 0, robust=0.7),
            _row("b_demo_later", "b", 3, 100, 5),  # a later demo run never replaces a full evaluation
            _row("c_first", "c", 4, 500, 0, robust=0.6, clean=0.8),
            _row("c_latest", "c", 4, 500, 3, robust=0.6, clean=0.85),  # among equal n, the latest
            _row("a_other_eps", "a", 2, 100, 1, eps_text="0.2"),
        ]
    )
    chosen = select_rows(frame)
    assert chosen["run_id"].tolist() == ["a_full", "b_full", "c_latest", "impostor_demo", "a_other_eps"]


def test_recipe_label_names_everything_but_the_seed():
    info = {"architecture": "cnn"}
    assert recipe_label("standard", {"epochs": 20, "eps": "0.1", "seed": 3}, info) == "standard cnn 20ep"
    training = {"threat_model": "Linf", "eps": "0.1", "epochs": 3, "seed": 1}
    assert recipe_label("pgd-at", training, info) == "pgd-at Linf 0.1 cnn 3ep"
    assert recipe_label("pgd-at", {"eps": "0.1"}, {}) == "pgd-at 0.1"
    assert recipe_label("", training, info) == ""


def test_runs_frame_keeps_a_row_it_cannot_read_completely_with_the_reason_and_leaves_off_false_numbers(tmp_path):
    sessions = store.open_database(f"sqlite:///{tmp_path / 'r.db'}")
    with sessions.begin() as s:
        info = {"architecture": "cnn", "training": {"method": 5, "eps": "8/255", "seed": 2, "epochs": 3}}
        model = store.get_or_create_model(
            s, name="m", source="m.py", file_sha256="f" * 64, weights_sha256=None, info=info
        )
        s.add(
            store.RunRecord(
                id="r1",
                model_id=model.id,
                dataset="fashion-mnist",
                threat_model="Linf",
                eps=0.1,
                eps_text="0.1",
                n_examples=10,
                seed=0,
                attack="standard",
                config_key="r1",
                status=store.COMPLETE,
                clean_acc=0.9,
                robust_acc=0.5,
                config={},
                provenance={},
                flags=[{"code": "c", "message": "m"}, "not a flag"],
                created_at=T0,
                examples=example_rows(10, 0.9, 0.5),
            )
        )
        values = ["x", 1.0]  # not a number: the score cannot be read
        s.add(store.MetricRecord(run_id="r1", method="saliency", metric="sparseness", mean=0.5, n=2, values=values))
        for run_id, n, clean_acc, robust_acc in (("nan", 10, 0.9, float("nan")), ("forged", 10, 0.9, 0.95)):
            s.add(
                store.RunRecord(
                    id=run_id,
                    model_id=model.id,
                    dataset="fashion-mnist",
                    threat_model="Linf",
                    eps=0.1,
                    eps_text="0.1",
                    n_examples=n,
                    seed=0,
                    attack="standard",
                    config_key=run_id,
                    status=store.COMPLETE,
                    clean_acc=clean_acc,
                    robust_acc=robust_acc,
                    config={},
                    provenance={},
                    created_at=T0,
                    examples=example_rows(10, 0.9, 0.5),
                )
            )
    with sessions.begin() as s:
        (row,) = runs_frame(s).to_dict("records")
        off = left_off(s)
    reasons = {run_id: (model, reason) for run_id, model, reason in off}
    assert sorted(reasons) == ["forged", "nan"] and {m for m, _ in reasons.values()} == {"m"}
    assert "robust accuracy None is not its rows' 5 of 10" in reasons["nan"][1]  # SQLite stores NaN as NULL
    assert "robust accuracy 0.95 is not its rows' 5 of 10" in reasons["forged"][1]
    assert row["malformed"] == "score saliency/sparseness: ValueError; training method int"
    assert row["training"] == "" and row["scores"] == {} and row["flags"] == ({"code": "c", "message": "m"},)
    assert (row["eps_trained"], row["seed"], row["epochs"], row["architecture"]) == (8 / 255, 2, 3, "cnn")


def test_to_entries_keeps_the_order_and_attaches_each_models_reported_entry():
    frame = select_rows(pd.DataFrame([_row("r1", "a", 1, 10, 0, robust=0.2), _row("r2", "b", 2, 10, 0, robust=0.4)]))
    for column, value in {
        "attack": "standard",
        "training": "standard",
        "flags": (),
        "recipe": "",
        "seed": None,
        "explained_output": "logit",
    }.items():
        frame[column] = [value] * len(frame)
    for column in ("eps_trained", "malformed", "epochs", "clean_correct"):
        frame[column] = [None] * len(frame)
    frame["architecture"] = frame["threat_trained"] = ""
    frame["scores"] = [{("m", "x"): Score(0.1, None, None, 1)}, {}]
    frame["imported"] = [None, "a-r1.json"]
    frame["shared_name"] = [False, False]
    entries = to_entries(frame, {"a": {"model_id": "a", "clean_acc": "90.0"}})
    assert [e.model for e in entries] == ["b", "a"] and [e.imported for e in entries] == [None, "a-r1.json"]
    assert entries[0].reported is None and entries[1].reported == {"model_id": "a", "clean_acc": "90.0"}
    assert entries[0].scores == {("m", "x"): Score(0.1, None, None, 1)}


def test_entry_interval_and_degenerate_counts():
    degenerate = {"zero": 2, "constant": 0, "non_finite": 1}
    scores = {("saliency", "sparseness"): Score(0.5, None, None, 3, details={"degenerate": degenerate})}
    e = Entry("r", "m", 1000, "standard", 0.9, 0.7, "standard", T0, (), scores)
    lo, hi = e.robust_interval  # 700 of 1000: Wilson 95% interval [67.1, 72.8]
    assert (round(100 * lo, 1), round(100 * hi, 1)) == (67.1, 72.8)
    assert e.degenerate("saliency") == degenerate and e.degenerate("other") == {}
