"""bench/profile_run.py: nvidia-smi parsing, utilisation over windows, the instruments on the real stage timer and
suite, and a whole (tiny) CPU evaluation whose windows match the stage timings the run stored."""

import importlib.util
import json
import re
import subprocess
import sys
import time
from datetime import datetime

import pytest
import torch

import metrics.suite
from harness.pipeline.lifecycle import StageTimer
from metrics.controls import CONTROLS
from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("profile_run", ROOT / "bench" / "profile_run.py")
bench = sys.modules["profile_run"] = importlib.util.module_from_spec(spec)  # its dataclasses look it up there
spec.loader.exec_module(bench)


def test_an_nvidia_smi_line_is_parsed_and_anything_else_skipped():
    sample = bench.parse_smi_line("2026/11/13 12:34:56.789, 37, 1234\n")
    assert sample == bench.Sample(datetime(2026, 11, 13, 12, 34, 56, 789000).timestamp(), 37.0, 1234.0)
    assert bench.parse_smi_line("timestamp, utilization.gpu [%], memory.used [MiB]") is None
    assert bench.parse_smi_line("2026/11/13 12:34:56.789, [N/A], 1234") is None
    assert bench.parse_smi_line("") is None


def test_utilisation_is_averaged_over_the_samples_inside_the_windows():
    samples = [bench.Sample(float(t), 10.0 * t, 100.0 + t) for t in range(10)]
    one = bench.window_stats(samples, [(2.0, 4.0)])  # t = 2, 3, 4
    assert one == {"samples": 3, "util_mean": 30.0, "util_max": 40.0, "memory_max_mib": 104.0}
    two = bench.window_stats(samples, [(0.0, 1.0), (8.5, 9.0)])  # t = 0, 1, 9
    assert two["samples"] == 3 and two["util_mean"] == pytest.approx((0 + 10 + 90) / 3, abs=0.05)
    assert bench.window_stats(samples, [(3.5, 3.9)])["util_mean"] is None
    assert bench.window_stats(samples, [])["samples"] == 0


def test_without_cuda_there_is_no_sampling_and_it_says_so():
    sampler = bench.GpuSampler(torch.device("cpu"), 0.2)
    assert sampler.start() == "n/a (no CUDA device)"
    assert sampler.stop() == []


def test_the_instruments_record_stage_and_suite_windows_and_are_removed_after():
    original_score, original_call = metrics.suite._score, StageTimer.__call__
    seen, windows = [], bench.Windows()
    with bench.Instruments(windows, lambda stage, entering: seen.append((stage, entering))) as instruments:
        assert metrics.suite._score is not original_score
        timer = StageTimer()
        with timer("attack"):
            time.sleep(0.05)
    assert metrics.suite._score is original_score and StageTimer.__call__ is original_call
    assert instruments.notes == []
    assert seen == [("attack", True), ("attack", False)]
    ((t0, t1),) = windows.of("stage")["attack"]
    assert t1 - t0 == pytest.approx(timer.seconds["attack"], abs=0.01)  # the pipeline's own timer still ran
    assert timer.seconds["attack"] >= 0.05


@pytest.mark.slow
def test_a_cpu_evaluation_reports_the_stored_stage_times_and_the_explain_parts(tmp_path):
    out = tmp_path / "profile.json"
    done = subprocess.run(
        [
            sys.executable,
            "bench/profile_run.py",
            *("--device", "cpu", "--n-examples", "4", "--attack", "apgd-ce", "--methods", "saliency"),
            *("--metrics", "deletion_auc,sparseness", "--n-explain", "2", "--no-featurevis", "--top", "5"),
            *("--json", str(out)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"explain_seconds: \d+\.\d+ gpu_util_explain: n/a", last), last
    result = json.loads(out.read_text())
    assert result["gpu_sampling"] == "n/a (no CUDA device)" and result["notes"] == []
    stages = result["stages"]
    assert {"load", "contract", "attack", "explain"} <= set(stages)
    for stage, row in stages.items():  # the windows wrap the pipeline's own timer: the same seconds
        assert row["window_s"] == pytest.approx(row["stored_s"], rel=0.02, abs=0.05), stage  # scheduling jitter
    parts = result["explain_parts"]
    assert {"attributions: saliency", "score: deletion_auc", "score: sparseness"} <= set(parts)
    # sparseness has a model-free null: every control is scored with it too; deletion AUC's null is its floor
    assert parts["score: deletion_auc"]["calls"] == 1 and parts["score: sparseness"]["calls"] == 1 + len(CONTROLS)
    explain = stages["explain"]["stored_s"]
    assert 0 <= result["explain_rest_s"] <= explain
    profiler = result["profiler"]
    assert len(profiler["top_ops"]) == 5 and 0 < profiler["ops_self_cpu_s"] <= explain
    assert float(last.split()[1]) == explain
