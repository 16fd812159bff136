"""bench/protocol_agreement.py: two runs of one model compared example by example on a hand-made case, the pairing
(same model and images, the newest run of each attack), and a whole run's last line on archive files."""

import copy
import importlib.util
import subprocess
import sys

from harness.store.archive import write_archive
from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("protocol_agreement", ROOT / "bench" / "protocol_agreement.py")
bench = sys.modules["protocol_agreement"] = importlib.util.module_from_spec(spec)  # its dataclasses look it up there
spec.loader.exec_module(bench)

COLUMNS = ["idx", "label", "clean_pred", "adv_pred", "clean_correct", "robust_correct", "perturbation"]


def _record(attack: str, robust: list[bool], *, finished: str = "2026-12-01T00:00:00", name: str = "m") -> dict:
    rows = [[i, 0, 0, 0 if r else 1, True, r, 0.1] for i, r in enumerate(robust)]
    return {
        "model": {"name": name, "file_sha256": "a" * 64, "weights_sha256": "b" * 64},
        "run": {
            "status": "complete",
            "attack": attack,
            "dataset": "fashion-mnist",
            "threat_model": "Linf",
            "eps_text": "0.1",
            "n_examples": len(robust),
            "seed": 0,
            "finished_at": finished,
            "clean_acc": 1.0,
        },
        "examples": {"columns": COLUMNS, "rows": rows},
    }


def test_outcomes_that_differ_are_counted_each_way():
    # standard breaks examples 1 and 2, the baseline breaks 2 and 3: one each way; robust 2/5 vs 2/5
    standard = _record("standard", [True, False, False, True, True])
    baseline = _record("apgd-ce,apgd-t", [True, True, False, False, True])
    a = bench.agreement(standard, baseline)
    assert (a.n, a.robust, a.standard_only, a.baseline_only, a.clean_differs) == (5, (0.6, 0.6), 1, 1, 0)
    changed = copy.deepcopy(baseline)
    changed["examples"]["rows"][4][2] = 7  # another clean prediction on example 4
    assert bench.agreement(standard, changed).clean_differs == 1


def test_pairs_join_the_same_model_and_images_and_take_the_newest_run():
    standard = _record("standard", [True, False])
    old = _record("apgd-ce,apgd-t", [False, False], finished="2026-11-01T00:00:00")
    new = _record("apgd-ce,apgd-t", [True, True], finished="2026-11-02T00:00:00")
    other_n = _record("apgd-ce,apgd-t", [True, True, True])  # other images: not a pair
    alone = _record("standard", [True], name="alone")  # no baseline run
    assert bench.pairs([old, standard, new, other_n, alone], "apgd-ce,apgd-t") == [(standard, new)]


def test_last_line_on_archive_files(tmp_path):
    write_archive(tmp_path / "m-1.json.gz", _record("standard", [True, False, False, False]))
    write_archive(tmp_path / "m-2.json", _record("apgd-ce,apgd-t", [True, True, False, False]))
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "protocol_agreement.py"), "--archive", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == "max robust acc diff: 25.0 points (1 models)"
