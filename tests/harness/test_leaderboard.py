"""Leaderboard regeneration from a database the test builds with the real storage layer."""

from datetime import datetime, timedelta

from harness import storage
from harness.leaderboard import build_leaderboard


def _add_run(s, model, run_id, *, n, robust, clean=0.9, status="complete", days=0, eps_text="0.1"):
    s.add(
        storage.RunRecord(
            id=run_id, model_id=model.id, dataset="fashion-mnist", threat_model="Linf", eps=float(eps_text),
            eps_text=eps_text, n_examples=n, seed=0, attack="standard", config_key=run_id, status=status,
            clean_acc=clean, robust_acc=robust, config={}, provenance={},
            created_at=datetime(2026, 1, 1) + timedelta(days=days),
        )
    )  # fmt: skip


def _model(s, name, method):
    return storage.get_or_create_model(s, name=name, source=f"{name}.py", file_sha256=name * 2, weights_sha256=None,
                                       info={"training": {"method": method}})  # fmt: skip


def test_leaderboard_ranks_and_prefers_full_evaluations(tmp_path):
    sessions = storage.open_database(f"sqlite:///{tmp_path / 'lb.db'}")
    with sessions.begin() as s:
        std, rob, tra = _model(s, "std", "standard"), _model(s, "rob", "pgd-at"), _model(s, "tra", "trades")
        _add_run(s, std, "std1000", n=1000, robust=0.0, clean=0.91)
        _add_run(s, rob, "rob1000", n=1000, robust=0.70, clean=0.86)
        _add_run(s, rob, "rob200new", n=200, robust=0.90, days=5)  # newer demo run: must not replace n=1000
        _add_run(s, tra, "tra1000", n=1000, robust=0.65)
        _add_run(s, tra, "tra_fail", n=5000, robust=0.99, status="failed", days=9)  # never shown
        _add_run(s, tra, "tra_other_eps", n=1000, robust=0.5, eps_text="0.2")
    with sessions.begin() as s:
        text = build_leaderboard(s)
    table_01 = text.split("## fashion-mnist — Linf, eps = 0.1")[1].split("##")[0]
    lines = [line for line in table_01.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = lines[1:]
    col = {name: header.index(name) for name in ("Model", "Clean acc (%)", "Training")}
    cells = [[cell.strip() for cell in r.strip("|").split("|")] for r in rows]
    assert [c[col["Model"]] for c in cells] == ["rob", "tra", "std"]
    assert "`rob1000`" in rows[0] and "rob200new" not in text and "tra_fail" not in text
    # 700 of 1000: Wilson 95% interval [67.1, 72.8]
    assert "70.0 [67.1, 72.8]" in rows[0]
    assert cells[0][col["Clean acc (%)"]] == "86.0" and cells[0][col["Training"]] == "pgd-at"
    assert "## fashion-mnist — Linf, eps = 0.2" in text and "`tra_other_eps`" in text


def test_empty_database_says_how_to_start(tmp_path):
    sessions = storage.open_database(f"sqlite:///{tmp_path / 'empty.db'}")
    with sessions.begin() as s:
        assert "No completed runs yet" in build_leaderboard(s)


def test_adversarially_trained_vs_standard_section(tmp_path):
    """Hand-built scores: a clear gain, a clear loss and a tie, with the verdict each must get."""
    sessions = storage.open_database(f"sqlite:///{tmp_path / 'vs.db'}")
    with sessions.begin() as s:
        std, rob = _model(s, "std", "standard"), _model(s, "rob", "pgd-at")
        _add_run(s, std, "std1", n=100, robust=0.0)
        _add_run(s, rob, "rob1", n=100, robust=0.7)
        scores = {  # (metric, std values, rob values); Gini and SSIM higher is better, distance lower is better
            ("expected_gradients", "sparseness"): ([0.5, 0.52, 0.48, 0.5], [0.7, 0.72, 0.68, 0.7]),
            ("featurevis", "inversion_distance"): ([10.0, 11.0, 9.0, 10.0], [20.0, 21.0, 19.0, 20.0]),
            ("featurevis", "inversion_ssim"): ([0.1, 0.3, 0.1, 0.3], [0.3, 0.1, 0.3, 0.1]),
        }
        for (method, metric), (a, b) in scores.items():
            for run_id, values in (("std1", a), ("rob1", b)):
                s.add(storage.MetricRecord(run_id=run_id, method=method, metric=metric, mean=sum(values) / 4,
                                           std=0.1, n=4, ci_low=min(values), ci_high=max(values), values=values,
                                           details={}))  # fmt: skip
    with sessions.begin() as s:
        text = build_leaderboard(s)
    section = text.split("Adversarially trained vs standard training")[1]
    rows = {line.split("|")[3].strip(): line for line in section.splitlines() if line.startswith("| rob ")}
    assert "| +0.200 [" in rows["Gini ↑"] and rows["Gini ↑"].rstrip(" |").endswith("yes")
    assert rows["Inv. dist. ↓"].rstrip(" |").endswith("no (the opposite)")
    assert "0.000 [" in rows["Inv. SSIM ↑"] and "inconclusive" in rows["Inv. SSIM ↑"]
    assert "Of 3 comparisons, 1 favour the adversarially trained model" in section
