"""bench/gpu_throughput.py: its FLOP count against closed forms, the spec-sheet peak table, the math-mode detection from
PyTorch's flags, the floor it divides by, and a whole (tiny) CPU run's last line."""

import contextlib
import importlib.util
import itertools
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

NEW_API = hasattr(torch.backends.cuda.matmul, "fp32_precision")


def test_forward_and_backward_to_the_input_are_counted_and_not_the_weights():
    # Linear(6 -> 5) then Linear(5 -> 3) on a flattened 1x2x3 image: forward 2*(6*5 + 5*3) = 90 FLOPs per image;
    # backward to the input: the same two products transposed, 2*(3*5 + 5*6) = 90; weight gradients are not needed
    net = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    assert bench.flops_forward_backward(net, (1, 2, 3), torch.device("cpu")) == {"matmul": 180}


def test_convolutions_and_matrix_products_are_counted_apart():
    # Conv2d(1 -> 2, 3x3) on a 1x4x4 image: 2x2x2 outputs x 9 multiply-adds = 144 FLOPs forward, 144 backward to the
    # input; then Linear(8 -> 3): 2*8*3 = 48 forward, 48 backward
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3))
    assert bench.flops_forward_backward(net, (1, 4, 4), torch.device("cpu")) == {"conv": 288, "matmul": 96}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # the names torch.cuda.get_device_name reports for these cards
        ("NVIDIA H100 80GB HBM3", (66.9, 494.7, 989.4, 989.4)),
        ("NVIDIA H100 PCIe", (51.2, 378.0, 756.0, 756.0)),
        ("NVIDIA H100 NVL", (60.0, 417.5, 835.5, 835.5)),
        ("NVIDIA H200", (67.0, 494.7, 989.4, 989.4)),
        ("NVIDIA H200 NVL", (60.0, 417.5, 835.5, 835.5)),
        ("NVIDIA A100-SXM4-80GB", (19.5, 156.0, 312.0, 312.0)),
        ("NVIDIA A100 80GB PCIe", (19.5, 156.0, 312.0, 312.0)),
        ("NVIDIA A100-PCIE-40GB", (19.5, 156.0, 312.0, 312.0)),
        ("NVIDIA A10", (31.2, 62.5, 125.0, 125.0)),
        ("NVIDIA L4", (30.3, 60.0, 121.0, 121.0)),
        ("NVIDIA L40S", (91.6, 183.0, 362.05, 362.05)),
        ("Tesla V100-SXM2-16GB", (15.7, None, None, 125.0)),
        ("Tesla V100-PCIE-32GB", (14.0, None, None, 112.0)),
        ("Tesla V100S-PCIE-32GB", (16.4, None, None, 130.0)),
        ("Tesla T4", (8.1, None, None, 65.0)),
        ("NVIDIA GeForce RTX 4090", (82.6, 82.6, 165.2, 165.2)),
        ("NVIDIA GeForce RTX 3090", (35.6, 35.6, 71.0, 71.0)),
    ],
)
def test_each_card_finds_its_own_row(name, expected):
    peaks = bench.device_peaks(name)
    assert (peaks.fp32, peaks.tf32, peaks.bf16, peaks.fp16) == expected


@pytest.mark.parametrize("name", ["NVIDIA A10G", "NVIDIA L40", "NVIDIA GH200 480GB", "NVIDIA B200", "AMD Instinct"])
def test_a_card_without_a_row_is_unknown_not_a_neighbour(name):
    # A10G is not an A10, L40 not an L40S, GH200 not an H200: their peaks differ
    assert bench.device_peaks(name) is None


def test_the_table_is_dense_and_consistent():
    for pattern, peaks in bench.PEAK_TABLE:
        assert peaks.source, pattern
        if peaks.tf32 is None:  # Volta and Turing: FP16 tensor cores only
            assert peaks.bf16 is None and peaks.fp16 > peaks.fp32, pattern
            continue
        # dense BF16 tensor math is twice dense TF32 on every Ampere, Ada and Hopper card (datasheet rounding aside):
        # a sparse figure copied for one mode and not the other breaks this
        assert peaks.bf16 == pytest.approx(2 * peaks.tf32, rel=0.02), pattern
        assert peaks.fp16 == peaks.bf16 and peaks.tf32 >= peaks.fp32, pattern


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        (["tf32", "ieee", "ieee"], "tf32"),  # the operator's own setting wins
        (["none", "tf32", "ieee"], "tf32"),  # else the backend's
        (["none", "none", "tf32"], "tf32"),  # else torch.backends'
        (["ieee", "tf32", "tf32"], "ieee"),
        (["none", "none", "none"], "ieee"),  # nothing set: IEEE FP32
        (["none", None], "ieee"),
    ],
)
def test_precision_is_inherited_from_the_first_setting_that_is_not_none(chain, expected):
    assert bench.resolve_precision(chain) == expected


@pytest.fixture
def flags():
    """Restore every fp32_precision setting and cuDNN's switch after the test."""
    b = torch.backends
    objects = [b, b.cuda.matmul, b.cudnn, getattr(b.cudnn, "conv", None), getattr(b.cudnn, "rnn", None)]
    saved = [(o, getattr(o, "fp32_precision", None)) for o in objects if o is not None]
    enabled, matmul = b.cudnn.enabled, torch.get_float32_matmul_precision()
    yield b
    torch.set_float32_matmul_precision(matmul)
    for o, value in saved:
        if value is not None:
            o.fp32_precision = value
    b.cudnn.enabled = enabled


@pytest.mark.skipif(not NEW_API, reason="PyTorch before 2.9 has no fp32_precision settings")
def test_the_flags_are_read_with_inheritance(flags):
    flags.fp32_precision, flags.cudnn.fp32_precision, flags.cudnn.conv.fp32_precision = "ieee", "none", "tf32"
    assert bench.fp32_precision("conv") == "tf32"
    flags.cudnn.conv.fp32_precision, flags.cudnn.fp32_precision = "none", "ieee"
    flags.fp32_precision = "tf32"
    assert bench.fp32_precision("conv") == "ieee"  # cuDNN's own setting is more specific than the global one
    flags.cudnn.fp32_precision = "none"
    assert bench.fp32_precision("conv") == "tf32"
    flags.cuda.matmul.fp32_precision, flags.fp32_precision = "none", "ieee"
    assert bench.fp32_precision("matmul") == "ieee"
    flags.cuda.matmul.fp32_precision = "tf32"
    assert bench.fp32_precision("matmul") == "tf32"


@pytest.mark.skipif(not NEW_API, reason="PyTorch before 2.9 has no fp32_precision settings")
def test_the_flags_agree_with_pytorchs_own_legacy_getters_wherever_those_answer(flags):
    # PyTorch's allow_tf32 getters resolve the same settings, but raise on some combinations ("a mix of the legacy
    # and new APIs"); every combination they answer must give the same mode
    answered = 0
    for generic, backend, op in itertools.product(["none", "ieee", "tf32"], repeat=3):
        flags.fp32_precision, flags.cudnn.fp32_precision = generic, backend
        flags.cudnn.conv.fp32_precision = flags.cudnn.rnn.fp32_precision = op
        with contextlib.suppress(RuntimeError):
            assert (bench.fp32_precision("conv") == "tf32") == flags.cudnn.allow_tf32, (generic, backend, op)
            answered += 1
        flags.cuda.matmul.fp32_precision = op
        with contextlib.suppress(RuntimeError):
            assert (bench.fp32_precision("matmul") == "tf32") == flags.cuda.matmul.allow_tf32, (generic, op)
            answered += 1
    assert answered >= 10  # the comparison ran


def test_the_legacy_switches_are_seen(flags):
    torch.set_float32_matmul_precision("high")
    assert bench.fp32_precision("matmul") == "tf32"
    torch.set_float32_matmul_precision("highest")
    assert bench.fp32_precision("matmul") == "ieee"
    torch.backends.cudnn.allow_tf32 = False
    assert bench.fp32_precision("conv") == "ieee"
    torch.backends.cudnn.allow_tf32 = True
    assert bench.fp32_precision("conv") == "tf32"


def test_convolutions_without_cudnn_follow_the_matrix_products(flags):
    torch.backends.cudnn.allow_tf32 = True
    flags.cudnn.enabled = False
    torch.set_float32_matmul_precision("highest")
    assert bench.fp32_precision("conv") == "ieee"
    torch.set_float32_matmul_precision("high")
    assert bench.fp32_precision("conv") == "tf32"


@pytest.mark.parametrize(
    ("precision", "autocast", "has_tf32", "expected"),
    [
        ("tf32", None, True, "tf32"),
        ("tf32", None, False, "fp32"),  # allowed, but no TF32 tensor cores (before Ampere)
        ("ieee", None, True, "fp32"),
        ("ieee", torch.bfloat16, True, "bf16"),  # autocast decides, whatever the FP32 flags
        ("tf32", torch.float16, False, "fp16"),
    ],
)
def test_the_math_mode(precision, autocast, has_tf32, expected):
    assert bench.math_mode(precision, autocast, has_tf32) == expected
    with pytest.raises(ValueError, match="bfloat16 or float16"):
        bench.math_mode(precision, torch.float64, has_tf32)


def test_the_floor_divides_each_kind_of_operation_by_its_own_peak():
    # H100 SXM, cuDNN allowed TF32, cuBLAS not: 494.7e12 convolution FLOPs take 1 s, 66.9e12 matmul FLOPs 1 s more
    floor = bench.gpu_floor("NVIDIA H100 80GB HBM3", (9, 0), {"conv": "tf32", "matmul": "ieee"}, None)
    assert floor.modes == {"conv": "tf32", "matmul": "fp32"}
    assert floor.seconds({"conv": 494.7e12, "matmul": 66.9e12}) == pytest.approx(2.0)
    assert "TF32 tensor cores at 494.7 TFLOP/s" in floor.describe() and "FP32" in floor.describe()
    bf16 = bench.gpu_floor("NVIDIA H100 80GB HBM3", (9, 0), {"conv": "tf32", "matmul": "ieee"}, torch.bfloat16)
    assert bf16.seconds({"conv": 989.4e12}) == pytest.approx(1.0)


def test_a_card_without_tf32_falls_back_to_fp32_and_refuses_a_mode_it_lacks():
    floor = bench.gpu_floor("Tesla V100-SXM2-16GB", (7, 0), {"conv": "tf32", "matmul": "tf32"}, None)
    assert floor.modes == {"conv": "fp32", "matmul": "fp32"}
    assert floor.seconds({"conv": 15.7e12}) == pytest.approx(1.0)
    with pytest.raises(SystemExit, match="no BF16"):
        bench.gpu_floor("Tesla V100-SXM2-16GB", (7, 0), {"conv": "ieee", "matmul": "ieee"}, torch.bfloat16)
    assert bench.gpu_floor("Tesla T4", (7, 5), {"conv": "ieee", "matmul": "ieee"}, torch.float16).seconds(
        {"matmul": 65e12}
    ) == pytest.approx(1.0)


def test_forced_and_given_peaks():
    forced = bench.gpu_floor("NVIDIA A100-SXM4-80GB", (8, 0), {"conv": "tf32", "matmul": "ieee"}, None, "fp32")
    assert forced.seconds({"conv": 19.5e12, "matmul": 19.5e12}) == pytest.approx(2.0)
    given = bench.gpu_floor("Some Future GPU", (10, 0), {"conv": "tf32", "matmul": "ieee"}, None, given_tflops=100)
    assert given.seconds({"conv": 1e14}) == pytest.approx(1.0)
    with pytest.raises(SystemExit, match="--peak-tflops"):
        bench.gpu_floor("Some Future GPU", (10, 0), {"conv": "tf32", "matmul": "ieee"}, None)


@pytest.mark.skipif(not NEW_API, reason="PyTorch before 2.9 has no fp32_precision settings")
def test_the_achievable_matmul_runs_in_the_mode_asked_and_restores_the_flag(flags):
    flags.cuda.matmul.fp32_precision = "ieee"
    seen = []
    with bench.matmul_precision("tf32"):
        seen.append(bench.fp32_precision("matmul"))
    assert seen == ["tf32"] and bench.fp32_precision("matmul") == "ieee"
    for mode in ("fp32", "bf16"):  # a small product on the CPU: a positive, finite rate
        rate = bench.achievable_matmul(mode, torch.device("cpu"), size=64)
        assert 0 < rate < float("inf")
    assert bench.fp32_precision("matmul") == "ieee"


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
