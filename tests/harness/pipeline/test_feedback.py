"""What a run prints before and while it works: the header with the resolved settings, and AutoAttack's log per
chunk in AutoAttack's own words."""

from __future__ import annotations

from harness.core.config import RunConfig
from harness.core.presets import apply_preset
from harness.core.threads import Cores, Threads
from harness.pipeline.feedback import chunk_line, header
from harness.pipeline.resolve import check_options, resolve
from harness.pipeline.source import locate
from metrics.suite import SuiteConfig
from tests.conftest import SUBMISSIONS

MODEL = SUBMISSIONS / "fmnist_standard.py"
DEFAULT = SuiteConfig()  # the default suite's metrics and controls (main's own numbers: 21 and 5 now)
FMNIST = {"name": "fmnist_standard", "dataset": "fashion-mnist", "architecture": "gap-cnn"}


def test_the_header_shows_every_resolved_setting(data_dir, tmp_path):
    config = apply_preset(RunConfig(model=MODEL, n_examples=50, preset="quick", data_dir=data_dir))
    config.db = f"sqlite:///{tmp_path / 'r.db'}"
    plan = resolve(check_options(config), FMNIST, source=locate(model=MODEL), data_dir=data_dir)
    lines = header(plan, threads=Threads(2, Cores(2)), device="cpu", preset="quick", model="fmnist_standard")
    assert lines[0] == f"robint-bench run: fmnist_standard ({MODEL.resolve()}), preset quick"
    rows = dict(line.strip().split("  ", 1) for line in lines[1:])
    rows = {k.strip(): v.strip() for k, v in rows.items()}
    assert rows["data"] == "fashion-mnist, first 50 test images"
    assert rows["threat model"] == "Linf, eps = 0.1"
    assert rows["attack"] == "AutoAttack standard (apgd-ce, apgd-t, fab-t, square), seed 0, chunks of 50"
    assert rows["explain"] == (
        "expected_gradients (n_samples=50), integrated_gradients (n_steps=16, n_trials=2) x "
        f"{len(DEFAULT.metrics)} metrics + {len(DEFAULT.controls)} controls on 5 images; 2 sanity images, 1 GridPG "
        "composite"
    )
    assert rows["featurevis"] == "4 inversions x 50 steps, 3 x 10 generations x 20 steps"
    assert rows["device"] == "cpu, 2 (2 cores available (affinity 2, no cgroup quota)) threads per process"
    assert rows["worker"] == "sandboxed" and rows["database"] == config.db


def test_each_chunk_is_logged_as_autoattack_logs_it():
    line = chunk_line(0, 250, {"clean": 0.904, "apgd-ce": 0.012, "apgd-t": 0.004, "fab-t": 0.004, "square": 0.004})
    assert line == (
        "attack [0, 250): initial accuracy: 90.40%, robust accuracy after APGD-CE: 1.20%, after APGD-T: 0.40%, "
        "after FAB-T: 0.40%, after SQUARE: 0.40%"
    )
    assert chunk_line(0, 4, {}) == "attack [0, 4): no AutoAttack log (no point was attacked)"
