"""The leaderboard's analysis (typed values) and its rendering, from a database the test builds with the real
storage layer."""

from datetime import datetime, timedelta

from harness import store
from harness.report.analysis import analyse
from harness.report.leaderboard import build_leaderboard
from tests.harness.report.builders import example_rows


def _add_run(s, model, run_id, *, n, robust, clean=0.9, status="complete", days=0, eps_text="0.1"):
    s.add(
        store.RunRecord(
            id=run_id,
            model_id=model.id,
            dataset="fashion-mnist",
            threat_model="Linf",
            eps=float(eps_text),
            eps_text=eps_text,
            n_examples=n,
            seed=0,
            attack="standard",
            config_key=run_id,
            status=status,
            clean_acc=clean,
            robust_acc=robust,
            config={},
            provenance={},
            created_at=datetime(2026, 1, 1) + timedelta(days=days),
            examples=example_rows(n, clean, robust) if status == "complete" else [],
        )
    )


def _model(s, name, method):
    return store.get_or_create_model(
        s,
        name=name,
        source=f"{name}.py",
        file_sha256=name * 2,
        weights_sha256=None,
        info={"training": {"method": method}},
    )


def _add_metric(s, run_id, method, metric, values, *, low=None, high=None, details=None):
    """One stored score: its per-example values, mean and interval (the values' range unless given)."""
    s.add(
        store.MetricRecord(
            run_id=run_id,
            method=method,
            metric=metric,
            mean=sum(values) / len(values),
            std=0.1,
            n=len(values),
            ci_low=min(values) if low is None else low,
            ci_high=max(values) if high is None else high,
            values=values,
            details=details or {},
        )
    )


BEATS_NOOP = {"noop": {"mean": 0.0, "diff": 1.0, "interval": [0.5, 1.5], "beats": True, "p_value": 0.001}}
BEATS_NOOP_LOWER = {"noop": {"mean": 50.0, "diff": -30.0, "interval": [-35.0, -25.0], "beats": True, "p_value": 0.001}}


def test_leaderboard_ranks_and_prefers_full_evaluations(tmp_path):
    sessions = store.open_database(f"sqlite:///{tmp_path / 'lb.db'}")
    with sessions.begin() as s:
        std, rob, tra = _model(s, "std", "standard"), _model(s, "rob", "pgd-at"), _model(s, "tra", "trades")
        _add_run(s, std, "std1000", n=1000, robust=0.0, clean=0.91)
        _add_run(s, rob, "rob1000", n=1000, robust=0.70, clean=0.86)
        _add_run(s, rob, "rob200new", n=200, robust=0.90, days=5)  # newer demo run: must not replace n=1000
        _add_run(s, tra, "tra1000", n=1000, robust=0.65)
        _add_run(s, tra, "tra_fail", n=5000, robust=0.99, status="failed", days=9)  # never shown
        _add_run(s, tra, "tra_other_eps", n=1000, robust=0.5, eps_text="0.2")
    with sessions.begin() as s:
        boards = analyse(s)
        text = build_leaderboard(s)
    assert [(b.dataset, b.threat_model, b.eps_text) for b in boards] == [
        ("fashion-mnist", "Linf", "0.1"),
        ("fashion-mnist", "Linf", "0.2"),
    ]
    first = boards[0].entries
    assert [e.model for e in first] == ["rob", "tra", "std"]
    assert [e.run_id for e in first] == ["rob1000", "tra1000", "std1000"]
    assert (first[0].clean_acc, first[0].training) == (0.86, "pgd-at")
    lo, hi = first[0].robust_interval  # 700 of 1000: Wilson 95% interval [67.1, 72.8]
    assert (round(100 * lo, 1), round(100 * hi, 1)) == (67.1, 72.8)
    assert [e.run_id for e in boards[1].entries] == ["tra_other_eps"]
    # the rendering shows exactly these rows
    assert "| 1 | rob | 86.0 | 70.0 [67.1, 72.8] | 1000 |" in text
    assert "rob200new" not in text and "tra_fail" not in text and "| tra_other_eps |" in text


def test_empty_database_says_how_to_start(tmp_path):
    sessions = store.open_database(f"sqlite:///{tmp_path / 'empty.db'}")
    with sessions.begin() as s:
        assert "No completed runs yet" in build_leaderboard(s)


def test_adversarially_trained_vs_standard_section(tmp_path):
    """Hand-built scores of three seeds a side: a clear loss, a tie and a descriptive score, with what each gets."""
    sessions = store.open_database(f"sqlite:///{tmp_path / 'vs.db'}")
    wiggle = [0.0, 0.02, -0.02, 0.01, -0.01, 0.0, 0.03, -0.03, 0.0, 0.0]
    with sessions.begin() as s:
        for seed in range(3):
            for name, method in (("std", "standard"), ("rob", "pgd-at")):
                model = store.get_or_create_model(
                    s,
                    name=f"{name}{seed}",
                    source=f"{name}{seed}.py",
                    file_sha256=f"{name}{seed}" * 2,
                    weights_sha256=None,
                    info={"training": {"method": method, "seed": seed}},
                )
                _add_run(s, model, f"{name}{seed}", n=100, robust=0.7 if method != "standard" else 0.0)
                # inversion distance (lower is better): 10 for standard, 20 for robust models, seed spread 0.1
                shift = 0.1 * seed
                distance = [(20.0 if name == "rob" else 10.0) + shift + w for w in wiggle]
                ssim = [0.1, 0.3] * 5 if name == "std" else [0.3, 0.1] * 5
                _add_metric(s, f"{name}{seed}", "featurevis", "inversion_distance", distance, details=BEATS_NOOP_LOWER)
                _add_metric(s, f"{name}{seed}", "featurevis", "inversion_ssim", ssim, details=BEATS_NOOP)
                _add_metric(s, f"{name}{seed}", "expected_gradients", "sparseness", [0.5 + w for w in wiggle])
    with sessions.begin() as s:
        (board,) = analyse(s)
        text = build_leaderboard(s)
    found = {c.metric: c for c in board.comparisons}
    assert set(found) == {"sparseness", "inversion_distance", "inversion_ssim"}
    distance, ssim, gini = found["inversion_distance"], found["inversion_ssim"], found["sparseness"]
    assert (distance.kind, distance.seeds, distance.baseline) == ("recipes", (3, 3), "standard")
    assert abs(distance.diff - 10.0) < 1e-12 and distance.verdict == "no (the opposite)"
    assert abs(ssim.diff) < 1e-12 and ssim.verdict.startswith("inconclusive")
    assert gini.verdict == "descriptive (no null, no verdict)" and not gini.informative
    assert "Recipe verdicts (3+ seeds on both sides, the method beating its bar): 2; in favour" in text
    assert "of the standard one: 1; inconclusive: 1." in text


def test_a_set_level_score_with_unequal_seeds_uses_every_seeds_interval(tmp_path):
    """FID has one value per run. Two standard seeds against one robust model: the verdict needs the robust interval
    apart from both seeds' intervals, not from whichever seed happens to come last."""
    sessions = store.open_database(f"sqlite:///{tmp_path / 'fid.db'}")
    intervals = {"std_a": (170.0, 260.0), "std_b": (300.0, 440.0), "rob": (120.0, 220.0)}
    with sessions.begin() as s:
        models = {"std_a": _model(s, "std_a", "standard"), "std_b": _model(s, "std_b", "standard")}
        models["rob"] = _model(s, "rob", "pgd-at")
        for name, (low, high) in intervals.items():
            _add_run(s, models[name], name, n=100, robust=0.7 if name == "rob" else 0.0)
            _add_metric(s, name, "featurevis", "generation_fid", [(low + high) / 2], low=low, high=high)
    with sessions.begin() as s:
        (board,) = analyse(s)
    (fid,) = [c for c in board.comparisons if c.metric == "generation_fid"]
    assert fid.kind == "intervals" and fid.seeds == (1, 2)
    assert fid.intervals == ((120.0, 220.0), (170.0, 440.0))  # the standard recipe's span over its two seeds
    # apart from std_b's interval, but not from std_a's; and one seed is no recipe verdict anyway
    assert fid.verdict == "no recipe verdict (intervals overlap)"


def test_each_recipe_is_compared_with_the_standard_recipe_of_its_architecture(tmp_path):
    """Two architectures, each with its own standard model: a robust model is compared with its own architecture's
    standard model (paired differences show which), and the dose-response never mixes threat models or
    architectures (an L2 eps of 1.5 is not a Linf eps)."""
    sessions = store.open_database(f"sqlite:///{tmp_path / 'arch.db'}")
    # (name, method, threat, eps, architecture, inversion SSIM offset): every model scored on the same 10 images
    models = [
        ("std_a", "standard", None, None, "cnn", 0.0),
        ("std_b", "standard", None, None, "resnet", 0.5),
        ("rob_a05", "fgsm-rs", "Linf", "0.05", "cnn", 0.1),
        ("rob_a10", "fgsm-rs", "Linf", "0.1", "cnn", 0.2),
        ("rob_b10", "fgsm-rs", "Linf", "0.1", "resnet", 0.3),
        ("l2_a", "fgsm-rs", "L2", "1.5", "cnn", 0.05),
        ("rob_vit", "fgsm-rs", "Linf", "0.1", "vit", 0.4),  # no standard ViT: not compared, and the board says so
    ]
    wiggle = [0.0, 0.02, -0.02, 0.01, -0.01, 0.0, 0.03, -0.03, 0.0, 0.0]
    with sessions.begin() as s:
        for name, method, threat, eps, arch, offset in models:
            training = {"method": method, "epochs": 3, **({"threat_model": threat, "eps": eps} if eps else {})}
            model = store.get_or_create_model(
                s,
                name=name,
                source=f"{name}.py",
                file_sha256=name * 2,
                weights_sha256=None,
                info={"architecture": arch, "training": training},
            )
            _add_run(s, model, name, n=1000, robust=0.0 if method == "standard" else float(eps) / 2)
            ssim = [0.1 + offset + w for w in wiggle]
            _add_metric(s, name, "featurevis", "inversion_ssim", ssim, details=BEATS_NOOP)
    with sessions.begin() as s:
        (board,) = analyse(s)
        text = build_leaderboard(s)
    found = {c.model: c for c in board.comparisons}
    assert {m: c.baseline for m, c in found.items()} == {
        "rob_a05": "std_a",
        "rob_a10": "std_a",
        "rob_b10": "std_b",
        "l2_a": "std_a",
    }
    # paired on the same images, the wiggle cancels: each difference is the offset gap exactly; one seed a side is a
    # comparison of checkpoints, not of recipes: no verdict
    assert abs(found["rob_b10"].diff - (0.3 - 0.5)) < 1e-12 and found["rob_b10"].kind == "checkpoints"
    assert abs(found["rob_a10"].diff - 0.2) < 1e-12 and found["rob_a10"].verdict == "no recipe verdict (1 vs 1 seeds)"
    assert "| Recipe | Standard baseline |" in text
    assert board.uncompared == ["rob_vit: no standard recipe of architecture vit"]
    assert "Not compared: rob_vit: no standard recipe of architecture vit." in text
    (dose,) = board.dose_response  # the Linf cnn family only: the L2 and resnet families have < 3 eps
    assert dose.method == "fgsm-rs Linf cnn 3ep (featurevis)"
    assert dose.eps_values == (0.0, 0.05, 0.1) and dose.n_models == 3 and dose.rho > 0.99
    assert dose.p_value == dose.smallest_p == 2 / 6  # 3 levels: 6 orderings, no test can reject
