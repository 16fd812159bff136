"""bench/gpu_throughput.py: its FLOP count against a closed form, and a whole (tiny) CPU run's last line."""

import importlib.util
import re
import subprocess
import sys

import pytest
import torch
from torch import nn

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location("gpu_throughput", ROOT / "bench" / "gpu_throughput.py")
bench = sys.modules["gpu_throughput"] = importlib.util.module_from_spec(spec)  # its dataclasses look it up there
spec.loader.exec_module(bench)


def test_forward_and_backward_to_the_input_are_counted_and_not_the_weights():
    # Linear(6 -> 5) then Linear(5 -> 3) on a flattened 1x2x3 image: forward 2*(6*5 + 5*3) = 90 FLOPs per image;
    # backward to the input: the same two products transposed, 2*(3*5 + 5*6) = 90; weight gradients are not needed
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    assert bench.flops_forward_backward(net, (1, 2, 3), torch.device("cpu")) == 180


@pytest.mark.slow
def test_a_cpu_run_ends_with_the_ratio_to_the_floor():
    done = subprocess.run(
        [
            sys.executable,
            "bench/gpu_throughput.py",
            "--device",
            "cpu",
            "--models",
            "fmnist_standard",
            "--batch",
            "4",
            "--iters",
            "2",
            "--n-explain",
            "2",
            "--ig-steps",
            "2",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "measured" in lines[0]  # the CPU's peak is measured, and says so
    assert re.fullmatch(r"ratio_to_floor: \d+\.\d\d", lines[-1])
    assert float(lines[-1].split()[1]) >= 0.5  # no device beats its peak by 2x (timer noise aside)
