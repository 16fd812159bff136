"""The boards in order and where reported entries go (harness/report/analysis.py)."""

import pandas as pd

from harness.report.analysis import build_boards, place_reported


def _rep(model_id, dataset="cifar10", threat="Linf", eps="8/255", robust="50.0"):
    return {"model_id": model_id, "dataset": dataset, "threat_model": threat, "eps": eps, "autoattack_acc": robust}


def test_a_reported_eps_joins_the_k_over_255_section_it_rounds_to_with_a_note():
    placed = {r["model_id"]: r for r in place_reported([_rep("a"), _rep("b", eps="0.031"), _rep("c", eps="0.5")], [])}
    assert placed["a"]["section"] == ("cifar10", "Linf", "8/255") and placed["a"]["eps_note"] is None
    assert placed["b"]["section"] == ("cifar10", "Linf", "8/255") and "0.031" in placed["b"]["eps_note"]
    assert placed["c"]["section"] == ("cifar10", "Linf", "0.5")
    (corruptions,) = place_reported([_rep("d", threat="corruptions", eps=None)], [])
    assert corruptions["section"] == ("cifar10", "corruptions", "")


def test_reported_only_settings_get_boards_in_data_set_threat_and_eps_order():
    reported = [
        _rep("a", threat="corruptions", eps=None),
        _rep("b", threat="L2", eps="0.5"),
        _rep("c", eps="8/255", robust="40.0"),
        _rep("d", eps="4/255"),
        _rep("e", dataset="cifar100"),
        _rep("f", eps="8/255", robust="60.0"),
    ]
    boards = build_boards(pd.DataFrame(), reported)
    assert [b.key for b in boards] == [
        ("cifar10", "Linf", "4/255"),
        ("cifar10", "Linf", "8/255"),
        ("cifar10", "L2", "0.5"),
        ("cifar10", "corruptions", ""),
        ("cifar100", "Linf", "8/255"),
    ]
    assert [r["model_id"] for r in boards[1].reported_only] == ["f", "c"] and boards[1].entries == []
