"""The short result summary ``run`` prints, read from the database: accuracies with Wilson intervals, AutoAttack's
log in its own words, the headline scores with intervals and † where a score does not beat its controls, flags,
stage times beside the estimate; ``verbose`` adds every score."""

from __future__ import annotations

from harness import store
from harness.report.summary import run_summary
from tests.harness.report.stored import add_run


def test_the_summary_of_a_stored_run(tmp_path):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    good = [0.5, 0.6, 0.55, 0.65, 0.58, 0.62]
    with store.transaction(store.open_database(db)) as s:
        add_run(
            s,
            name="rob",
            run_id="aaaaaaaaaaaa",
            values=good,
            clean=0.86,
            robust=0.5,
            n=50,
            flags=[{"code": "low-clean-accuracy", "message": "below 50%"}],
            # the random control scores what the method scores: every attribution headline gets †
            controls={"control_random": good, "control_input": [0.1, 0.0, 0.05, 0.1, 0.0, 0.02]},
            details={
                "autoattack": {"accuracy_after": {"clean": 0.86, "apgd-ce": 0.52, "apgd-t": 0.5}},
                "estimate": {"attack": [10.0, 60.0], "explain": [25.0, 25.0]},
            },
            timings={"attack": 14.0, "explain": 31.0},
        )
    lines = run_summary(db, "aaaaaaaaaaaa", verb="stored run")
    text = "\n".join(lines)
    assert lines[0] == "stored run aaaaaaaaaaaa: rob, fashion-mnist Linf eps = 0.1, n = 50, AutoAttack standard"
    assert "  clean accuracy   86.0% [73.8, 93.0]" in lines and "  robust accuracy  50.0% [36.6, 63.4] " in text
    assert "initial accuracy: 86.00%, robust accuracy after APGD-CE: 52.00%, after APGD-T: 50.00%" in text
    assert "    ABPC ↑                    0.583 [0.500, 0.650], n=6 †" in lines  # the random control is its bar
    assert "    FID ↓                     0.583 [0.500, 0.650], n=6" in lines  # feature visualisation: no controls
    assert "  flag             ⚠ low-clean-accuracy: below 50%" in lines
    assert "  time             45 s: attack 14 s (est. 10 s to 60 s), explain 31 s (est. 25 s)" in lines
    assert "every score" in lines[-1] and "sparseness" not in text
    verbose = run_summary(db, "aaaaaaaaaaaa", verbose=True)
    assert any(line.startswith("    control_random         abpc ") for line in verbose)
