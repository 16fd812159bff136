"""Throughput of the attack and the explain stage against the device's FLOP floor (GPU, or CPU for a dry run).

    python bench/gpu_throughput.py [--device cuda] [--models fmnist_standard,wrn-28-10] [--parts attack,explain]
        [--batch B] [--iters I] [--peak auto|fp32|tf32|bf16|fp16] [--peak-tflops P] [--tf32 default|on|off]
        [--autocast none|bf16|fp16] [--channels-last] [--cudnn-benchmark]

For each model (the shipped ``fmnist_standard``, 28x28, and RobustBench's CIFAR-10 ``Standard`` architecture,
WideResNet-28-10 from robustbench's model-zoo code with random weights, 32x32):

- **FLOPs** of one forward and backward pass to the input, per image, counted by ``torch.utils.flop_counter`` and
  split into convolutions and matrix products;
- **attack**: AutoAttack's APGD-CE (pyautoattack, as the harness runs it: float32, one restart, seeded, cuDNN
  deterministic without benchmarking unless ``--cudnn-benchmark``) on a batch
  whose labels are the model's own predictions, so every image is attacked for every iteration; measured in
  images x iterations per second (each iteration, and the start, is one forward and backward pass);
- **explain**: the regression gate's suite (saliency and integrated gradients x ABPC, relative deletion, sparseness,
  plus the two controls; metrics.suite.run_suite) in images per second, its FLOPs counted over a whole run;
- **floor**: the time the counted FLOPs take at the peak of the math each kind of operation actually runs in. On a
  GPU that is read from PyTorch's flags and the device: convolutions run in cuDNN (``torch.backends.cudnn.conv``
  ``fp32_precision``, or the legacy ``torch.backends.cudnn.allow_tf32``; on by default) and matrix products in
  cuBLAS (``torch.backends.cuda.matmul``, ``allow_tf32``/``set_float32_matmul_precision``; off by default): where
  TF32 is allowed and the device has TF32 tensor cores (compute capability 8.0 and later) the floor takes the TF32
  tensor-core peak, else dense FP32; under ``--autocast`` both take the BF16/FP16 tensor-core peak. Peaks are the
  dense (no 2:4 sparsity) spec-sheet figures in ``PEAK_TABLE`` (each with its source); ``--peak MODE`` forces one
  mode for every operation, ``--peak-tflops`` gives the number. On a CPU the peak is measured (the best of a few
  large float32 matrix products, stated as measured). On a GPU one more line says what a large matrix product
  achieves in the mode the convolutions use (what the spec peak means in practice on this card).

``ratio = measured time / floor time`` (1 is the floor; the target for the attack on a GPU is at most 1.5). The
output states each operation kind's mode and peak. Its last line, read by scripts, is ``ratio_to_floor: R``: the
attack's ratio for the RobustBench architecture (the model size the benchmark is run at; the 28x28 model is too small
to fill a GPU and is reported for reference).

Long because the peak table keeps every spec-sheet number next to its source, and the floor, the attack and the explain
stage share one FLOP counter and one set of flags.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
Mode = Literal["fp32", "tf32", "bf16", "fp16"]
OpKind = Literal["conv", "matmul"]
MODE_NAMES = {
    "fp32": "FP32 (no tensor cores)",
    "tf32": "TF32 tensor cores",
    "bf16": "BF16 tensor cores",
    "fp16": "FP16 tensor cores",
}


@dataclass(frozen=True)
class Peaks:
    """Dense peak TFLOP/s of one device per math mode (no 2:4 sparsity; BF16/FP16 with FP32 accumulation); None
    where the device has no tensor cores for that mode."""

    fp32: float
    tf32: float | None
    bf16: float | None
    fp16: float | None
    source: str

    def of(self, mode: Mode) -> float | None:
        return getattr(self, mode)


# (pattern searched in torch.cuda.get_device_name, peaks), the more specific names first. The vendors quote tensor-core
# figures "with sparsity" (2:4 structured): the dense figures here are half of those.
PEAK_TABLE: tuple[tuple[str, Peaks], ...] = (
    # NVIDIA H200 NVL: FP32 60, TF32 835*, BF16/FP16 1671* (* with sparsity). Source: NVIDIA H200 datasheet
    # (nvidia.com/en-us/data-center/h200, specifications table, H200 NVL column).
    (r"\bH200 NVL\b", Peaks(60.0, 417.5, 835.5, 835.5, "NVIDIA H200 datasheet, H200 NVL")),
    # NVIDIA H200 (SXM; torch reports "NVIDIA H200"): FP32 67, TF32 989*, BF16/FP16 1979*, the H100 SXM's compute.
    # Source: NVIDIA H200 datasheet (nvidia.com/en-us/data-center/h200, H200 SXM column).
    (r"\bH200\b", Peaks(67.0, 494.7, 989.4, 989.4, "NVIDIA H200 datasheet, H200 SXM")),
    # NVIDIA H100 NVL: FP32 60, TF32 835*, BF16/FP16 1671*. Source: NVIDIA H100 datasheet
    # (nvidia.com/en-us/data-center/h100, H100 NVL column).
    (r"\bH100 NVL\b", Peaks(60.0, 417.5, 835.5, 835.5, "NVIDIA H100 datasheet, H100 NVL")),
    # NVIDIA H100 PCIe: FP32 51.2, TF32 378 (756*), BF16/FP16 756 (1513*). Source: NVIDIA H100 Tensor Core GPU
    # Architecture whitepaper, table 3 (and the H100 datasheet, H100 PCIe column: 51, 756*, 1513*).
    (r"\bH100 PCIe\b", Peaks(51.2, 378.0, 756.0, 756.0, "NVIDIA H100 whitepaper table 3, H100 PCIe")),
    # NVIDIA H100 SXM5 (torch reports "NVIDIA H100 80GB HBM3"): FP32 66.9, TF32 494.7 (989.4*), BF16/FP16 989.4
    # (1978.9*). Source: NVIDIA H100 Tensor Core GPU Architecture whitepaper, table 3 (datasheet: 67, 989*, 1979*).
    (r"\bH100\b", Peaks(66.9, 494.7, 989.4, 989.4, "NVIDIA H100 whitepaper table 3, H100 SXM5")),
    # NVIDIA A100 (SXM4 and PCIe, 40 and 80 GB alike): FP32 19.5, TF32 156 (312*), BF16/FP16 312 (624*).
    # Source: NVIDIA A100 datasheet (nvidia.com/en-us/data-center/a100).
    (r"\bA100\b", Peaks(19.5, 156.0, 312.0, 312.0, "NVIDIA A100 datasheet")),
    # NVIDIA L40S: FP32 91.6, TF32 183 (366*), BF16/FP16 362.05 (733*). Source: NVIDIA L40S datasheet.
    (r"\bL40S\b", Peaks(91.6, 183.0, 362.05, 362.05, "NVIDIA L40S datasheet")),
    # NVIDIA L4: FP32 30.3, TF32 120*, BF16/FP16 242*. Source: NVIDIA L4 datasheet
    # (nvidia.com/en-us/data-center/l4).
    (r"\bL4\b", Peaks(30.3, 60.0, 121.0, 121.0, "NVIDIA L4 datasheet")),
    # NVIDIA A10: FP32 31.2, TF32 62.5 (125*), BF16/FP16 125 (250*). Source: NVIDIA A10 datasheet
    # (nvidia.com/en-us/data-center/products/a10-gpu).
    (r"\bA10\b", Peaks(31.2, 62.5, 125.0, 125.0, "NVIDIA A10 datasheet")),
    # GeForce RTX 4090: FP32 82.6, TF32 82.6 (165.2*), BF16/FP16 with FP32 accumulate 165.2 (330.4*). Source: NVIDIA
    # Ada GPU Architecture whitepaper, appendix A, table 2.
    (r"\bRTX 4090\b", Peaks(82.6, 82.6, 165.2, 165.2, "NVIDIA Ada whitepaper, appendix A")),
    # GeForce RTX 3090: FP32 35.6, TF32 35.6 (71*), BF16/FP16 with FP32 accumulate 71 (142*). Source: NVIDIA Ampere
    # GA102 GPU Architecture whitepaper, table 9.
    (r"\bRTX 3090\b", Peaks(35.6, 35.6, 71.0, 71.0, "NVIDIA GA102 whitepaper")),
    # Tesla V100S PCIe: FP32 16.4, FP16 tensor 130; V100 PCIe: 14, 112; V100 SXM2: 15.7, 125 (Volta: no TF32, no
    # BF16). Source: NVIDIA V100 datasheet (nvidia.com/en-us/data-center/v100).
    (r"\bV100S\b", Peaks(16.4, None, None, 130.0, "NVIDIA V100 datasheet, V100S PCIe")),
    (r"\bV100\b.*\bPCIE\b", Peaks(14.0, None, None, 112.0, "NVIDIA V100 datasheet, V100 PCIe")),
    (r"\bV100\b", Peaks(15.7, None, None, 125.0, "NVIDIA V100 datasheet, V100 SXM2")),
    # Tesla T4: FP32 8.1, mixed FP16/FP32 tensor 65 (Turing: no TF32, no BF16). Source: NVIDIA T4 datasheet.
    (r"\bT4\b", Peaks(8.1, None, None, 65.0, "NVIDIA T4 datasheet")),
)


def device_peaks(name: str) -> Peaks | None:
    """The spec-sheet peaks of the GPU named ``name`` (``torch.cuda.get_device_name``), None for an unknown one."""
    for pattern, peaks in PEAK_TABLE:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return peaks
    return None


def resolve_precision(chain: list[str | None]) -> Literal["ieee", "tf32"]:
    """The effective ``fp32_precision`` of an operator from its chain of settings, most specific first (operator,
    backend, ``torch.backends``): the first that is not ``"none"`` (inherit) wins; all ``"none"`` means IEEE FP32."""
    for value in chain:
        if value not in (None, "none"):
            return "tf32" if value == "tf32" else "ieee"
    return "ieee"


def fp32_precision(kind: OpKind) -> Literal["ieee", "tf32"]:
    """The FP32 precision PyTorch's flags allow for CUDA convolutions or matrix products right now.

    Convolutions run in cuDNN when it is enabled, else as PyTorch's own GEMM-based kernels (cuBLAS, the matrix
    products' flag). PyTorch 2.9+ has the ``fp32_precision`` settings (legacy ``allow_tf32`` flags set them too);
    older versions only the legacy flags."""
    backends = torch.backends
    if kind == "conv" and not backends.cudnn.enabled:
        kind = "matmul"
    chain = [getattr(backends.cudnn, "conv", None), backends.cudnn] if kind == "conv" else [backends.cuda.matmul]
    values = [getattr(o, "fp32_precision", None) for o in (*chain, backends)]
    if values[0] is not None:  # the new settings exist: read them, never the legacy getters (which raise on a mix)
        return resolve_precision(values)
    legacy = backends.cudnn.allow_tf32 if kind == "conv" else backends.cuda.matmul.allow_tf32
    return "tf32" if legacy else "ieee"


def math_mode(precision: str, autocast: torch.dtype | None, has_tf32: bool) -> Mode:
    """The math an FP32 operation runs in: ``autocast``'s dtype (on tensor cores) if set, else TF32 where allowed
    (``precision == "tf32"``) and the device has TF32 tensor cores, else FP32."""
    if autocast is not None:
        modes: dict[torch.dtype, Mode] = {torch.bfloat16: "bf16", torch.float16: "fp16"}
        if autocast not in modes:
            raise ValueError(f"autocast dtype must be bfloat16 or float16, got {autocast}")
        return modes[autocast]
    return "tf32" if precision == "tf32" and has_tf32 else "fp32"


def op_kind(op: object) -> OpKind:
    """``conv`` for torch.utils.flop_counter's convolution entries (forward and backward), else ``matmul``."""
    return "conv" if "conv" in str(op) else "matmul"


@dataclass(frozen=True)
class Floor:
    """Peak FLOP/s per operation kind, the mode each runs in, and where the numbers come from."""

    flops_per_second: dict[str, float]
    modes: dict[str, str]
    source: str

    @classmethod
    def uniform(cls, flops_per_second: float, source: str, mode: str = "fp32") -> Floor:
        """One peak for every operation kind."""
        return cls({"conv": flops_per_second, "matmul": flops_per_second}, {"conv": mode, "matmul": mode}, source)

    def seconds(self, flops: dict[str, float]) -> float:
        """The time ``flops`` (per operation kind) take at these peaks."""
        return sum(n / self.flops_per_second[kind] for kind, n in flops.items())

    def describe(self) -> str:
        kinds = {"conv": "convolutions", "matmul": "matrix products"}
        parts = [
            f"{kinds[k]} {MODE_NAMES.get(m, m)} at {self.flops_per_second[k] / 1e12:.1f} TFLOP/s"
            for k, m in self.modes.items()
        ]
        return "; ".join(parts) + f" ({self.source})"


def gpu_floor(
    name: str,
    capability: tuple[int, int],
    precisions: dict[str, str],
    autocast: torch.dtype | None,
    forced: str = "auto",
    given_tflops: float | None = None,
) -> Floor:
    """The floor of a GPU named ``name``: each operation kind's mode (from ``precisions`` = its fp32_precision, and
    ``autocast``), or ``forced`` for all, and that mode's spec-sheet peak (or ``given_tflops`` for all)."""
    peaks = device_peaks(name)
    has_tf32 = capability >= (8, 0) and (peaks is None or peaks.tf32 is not None)  # TF32 came with Ampere (8.0)
    modes = {
        k: forced if forced != "auto" else math_mode(precisions[k], autocast, has_tf32) for k in ("conv", "matmul")
    }
    if given_tflops is not None:
        return Floor(dict.fromkeys(modes, given_tflops * 1e12), modes, f"{name}, {given_tflops} TFLOP/s given")
    if peaks is None:
        raise SystemExit(f"no spec-sheet peak for {name!r}: pass --peak-tflops")
    rates = {}
    for kind, mode in modes.items():
        value = peaks.of(mode)
        if value is None:
            raise SystemExit(f"{name} has no {MODE_NAMES[mode]} (compute capability {capability[0]}.{capability[1]})")
        rates[kind] = value * 1e12
    return Floor(rates, modes, f"{name}: dense peaks, {peaks.source}")


def cpu_floor() -> Floor:
    """The CPU's floor: the best of a few 2048x2048 float32 matrix products, for every operation kind."""
    best = 0.0
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048**3 / (time.perf_counter() - start))
    source = f"{best / 1e9:.1f} GFLOP/s measured: best 2048x2048 float32 matmul, {torch.get_num_threads()} threads"
    return Floor.uniform(best, source)


def current_precisions() -> dict[str, str]:
    return {kind: fp32_precision(kind) for kind in ("conv", "matmul")}  # type: ignore[arg-type]


def set_tf32(on: bool) -> None:
    """Allow (or forbid) TF32 for cuDNN convolutions and cuBLAS matrix products, with the settings this PyTorch has."""
    value = "tf32" if on else "ieee"
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = value
        torch.backends.cudnn.conv.fp32_precision = value
    else:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = on


@contextlib.contextmanager
def matmul_precision(value: str) -> Iterator[None]:
    """cuBLAS's FP32 precision set to ``value`` (``ieee`` or ``tf32``) inside, restored after."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        before = torch.backends.cuda.matmul.fp32_precision
        torch.backends.cuda.matmul.fp32_precision = value
    else:
        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = value == "tf32"
    try:
        yield
    finally:
        if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
            torch.backends.cuda.matmul.fp32_precision = before
        else:
            torch.backends.cuda.matmul.allow_tf32 = before


def achievable_matmul(mode: str, device: torch.device, size: int = 8192) -> float:
    """FLOP/s of a ``size``-cubed matrix product in ``mode`` on a GPU (mean of 10 after 3 warm-ups)."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode, torch.float32)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.rand(size, size, device=device, dtype=dtype, generator=g)
    b = torch.rand(size, size, device=device, dtype=dtype, generator=g)
    with matmul_precision("tf32" if mode == "tf32" else "ieee"):
        for _ in range(3):
            a @ b
        sync(device)
        start = time.perf_counter()
        for _ in range(10):
            a @ b
        sync(device)
    return 10 * 2 * size**3 / (time.perf_counter() - start)


@dataclass
class Model:
    name: str
    net: nn.Module
    shape: tuple[int, int, int]
    x: torch.Tensor | None = None  # real images when there are some, else random ones
    y: torch.Tensor | None = None


def load_models(names: list[str], device: torch.device, channels_last: bool = False) -> list[Model]:
    out = []
    for name in names:
        if name == "fmnist_standard":
            from harness.data import load_examples
            from harness.worker.submission import load_submission

            net = load_submission(ROOT / "submissions" / "fmnist_standard.py").model
            x, y = load_examples("fashion-mnist", n=256)
            out.append(Model(name, net, (1, 28, 28), x, y))
        elif name == "wrn-28-10":
            from harness.core.autoattack_shim import import_robustbench

            import_robustbench()
            from robustbench.model_zoo.architectures.wide_resnet import WideResNet

            torch.manual_seed(0)
            out.append(Model(name, WideResNet(depth=28, widen_factor=10), (3, 32, 32)))
        else:
            raise SystemExit(f"unknown model {name!r}: use fmnist_standard or wrn-28-10")
    for m in out:
        m.net = m.net.to(device).eval()
        if channels_last:
            m.net = m.net.to(memory_format=torch.channels_last)
    return out


def images(model: Model, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    if model.x is not None and len(model.x) >= n:
        return model.x[:n], model.y[:n]
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, *model.shape, generator=g), torch.randint(0, 10, (n,), generator=g)


class _Global:
    """Stands in for FlopCounterMode's module tracker, whose backward hooks do not work with ``autograd.grad``
    (which attacks and attribution methods call): every FLOP is counted under one name."""

    parents = {"Global"}

    def __enter__(self):
        return self

    def __exit__(self, *_):
        return None


def flop_counter() -> FlopCounterMode:
    """torch.utils.flop_counter's counter (matrix products and convolutions, forward and backward), totals only."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _Global()
    return counter


def flops_by_kind(counter: FlopCounterMode) -> dict[str, float]:
    """A finished counter's FLOPs per operation kind (``conv``, ``matmul``; kinds with none are left out)."""
    out: dict[str, float] = {}
    for op, flops in counter.get_flop_counts().get("Global", {}).items():
        out[op_kind(op)] = out.get(op_kind(op), 0.0) + flops
    return out


def flops_forward_backward(net: nn.Module, shape: tuple[int, ...], device: torch.device) -> dict[str, float]:
    """FLOPs per operation kind of one forward and backward pass to the input (not to the weights), per image
    (counted on 2 images)."""
    x = torch.rand(2, *shape, device=device, requires_grad=True)
    with flop_counter() as counter:
        loss = nn.functional.cross_entropy(net(x), torch.zeros(2, dtype=torch.long, device=device))
        torch.autograd.grad(loss, x)
    return {kind: flops / 2 for kind, flops in flops_by_kind(counter).items()}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def attack_rate(
    model: Model, batch: int, iters: int, device: torch.device, autocast: torch.dtype | None = None
) -> tuple[float, int]:
    """Seconds of APGD-CE on ``batch`` images for ``iters`` iterations, and the forward+backward passes per image."""
    from pyautoattack import AutoAttack

    x, _ = images(model, batch)
    x = x.to(device)
    with torch.no_grad():
        y = model.net(x).argmax(1)  # every image starts correctly classified: all are attacked every iteration
    adversary = AutoAttack(
        model.net, attacks=["apgd-ce"], device=device, eps=8 / 255, norm="Linf", seed=0, version="custom"
    )
    apgd = adversary.apgd
    apgd.n_restarts, apgd.n_iter = 1, iters
    with autocast_context(device, autocast):
        apgd.perturb(x[: min(2, batch)], y[: min(2, batch)])  # warm-up (cuDNN algorithm choice, allocator)
        sync(device)
        start = time.perf_counter()
        apgd.perturb(x, y)
        sync(device)
    return time.perf_counter() - start, iters + 1


def explain_rate(model: Model, n: int, ig_steps: int, device: torch.device) -> tuple[float, dict[str, float]]:
    """Seconds of the explain stage on ``n`` images, and its FLOPs per operation kind (counted in a second, untimed
    run)."""
    from metrics.suite import SuiteConfig, run_suite

    x, y = images(model, n)
    with torch.no_grad():
        pred = model.net(x.to(device)).argmax(1).cpu()
    config = SuiteConfig(
        methods=("saliency", "integrated_gradients"),
        metrics=("abpc", "deletion_relative", "sparseness"),
        n_explain=n,
        method_options=(("integrated_gradients", "n_steps", ig_steps), ("integrated_gradients", "n_trials", 1)),
    )
    kwargs = dict(num_classes=10, has_object_masks=False, background=None, device=device, progress=False)
    if device.type == "cuda":  # warm-up: cuDNN's algorithm choice, the allocator
        run_suite(model.net, x[:2], y[:2], pred[:2], config=dataclasses.replace(config, n_explain=2), **kwargs)
        sync(device)
    start = time.perf_counter()
    run_suite(model.net, x, y, pred, config=config, **kwargs)
    sync(device)
    seconds = time.perf_counter() - start
    with flop_counter() as counter:
        run_suite(model.net, x, y, pred, config=config, **kwargs)
    return seconds, flops_by_kind(counter)


def floors(device: torch.device, autocast: torch.dtype | None, forced: str, given: float | None) -> tuple[Floor, Floor]:
    """The attack's floor (under ``autocast``) and the explain stage's (never autocast); prints the device, PyTorch's
    flags, each operation kind's mode and peak, and on a GPU what a large matrix product achieves in the
    convolutions' mode."""
    if device.type != "cuda":
        floor = cpu_floor() if given is None else Floor.uniform(given * 1e12, f"{given} TFLOP/s given")
        print(f"device: cpu; peak {floor.source}")
        return floor, floor
    name, capability = torch.cuda.get_device_name(device), torch.cuda.get_device_capability(device)
    precisions = current_precisions()
    attack = gpu_floor(name, capability, precisions, autocast, forced, given)
    explain = gpu_floor(name, capability, precisions, None, forced, given)
    flags = ", ".join(f"{kind} fp32_precision {value}" for kind, value in precisions.items())
    print(f"device: {name} (compute capability {capability[0]}.{capability[1]}); flags: {flags}")
    print(f"floor: {attack.describe()}" + (f"; the attack under autocast {autocast}" if autocast else ""))
    if autocast is not None:
        print(f"explain floor: {explain.describe()}")
    mode = attack.modes["conv"]
    achieved = achievable_matmul(mode, device)
    print(
        f"achievable: an 8192^3 matrix product in {MODE_NAMES[mode]} ran at {achieved / 1e12:.1f} TFLOP/s "
        f"({100 * achieved / attack.flops_per_second['conv']:.0f}% of that mode's peak)"
    )
    return attack, explain


def share(flops: dict[str, float]) -> str:
    total = sum(flops.values()) or 1.0
    return ", ".join(f"{100 * n / total:.1f}% {kind}" for kind, n in sorted(flops.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="fmnist_standard,wrn-28-10")
    parser.add_argument("--parts", default="attack,explain", help="attack, explain or both [default: both]")
    parser.add_argument("--batch", type=int, default=None, help="attack batch [default: 256 on a GPU, 8 on CPU]")
    parser.add_argument("--iters", type=int, default=None, help="APGD iterations [default: 100 on a GPU, 4 on CPU]")
    parser.add_argument("--n-explain", type=int, default=None, help="[default: 100 on a GPU, 2 on CPU]")
    parser.add_argument("--ig-steps", type=int, default=None, help="[default: 32 on a GPU, 4 on CPU]")
    parser.add_argument(
        "--peak", choices=["auto", "fp32", "tf32", "bf16", "fp16"], default="auto", help="math mode of the floor"
    )
    parser.add_argument("--peak-tflops", type=float, default=None, help="the peak itself, for every operation")
    parser.add_argument("--tf32", choices=["default", "on", "off"], default="default", help="set PyTorch's TF32 flags")
    parser.add_argument(
        "--autocast", choices=["none", "bf16", "fp16"], default="none", help="the attack under autocast"
    )
    parser.add_argument("--channels-last", action="store_true", help="models in channels-last memory format")
    parser.add_argument(
        "--cudnn-benchmark",
        action="store_true",
        help="let cuDNN benchmark and pick non-deterministic algorithms (the harness's worker does not)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    parts = {p.strip() for p in args.parts.split(",")}
    if not parts <= {"attack", "explain"} or not parts:
        raise SystemExit(f"--parts {args.parts!r}: use attack, explain or attack,explain")
    batch = args.batch or (256 if gpu else 8)
    iters = args.iters or (100 if gpu else 4)
    n_explain = args.n_explain or (100 if gpu else 2)
    ig_steps = args.ig_steps or (32 if gpu else 4)
    autocast = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.autocast]
    from harness.core.device import seed_everything

    seed_everything(0)  # as the harness's worker: cuDNN deterministic, no algorithm benchmarking
    if args.cudnn_benchmark:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
    if args.tf32 != "default":
        set_tf32(args.tf32 == "on")
    attack_floor, explain_floor = floors(device, autocast, args.peak, args.peak_tflops)
    precisions = current_precisions()
    print(
        f"settings: attack batch {batch}, {iters} APGD-CE iterations; explain {n_explain} images, IG {ig_steps} steps"
        + (", channels-last" if args.channels_last else "")
        + ("; cuDNN benchmark" if args.cudnn_benchmark else "; cuDNN deterministic (as the harness)")
    )
    ratios = {}
    for model in load_models(args.models.split(","), device, args.channels_last):
        per_image = flops_forward_backward(model.net, model.shape, device)
        total = sum(per_image.values())
        if "attack" in parts:
            seconds, passes = attack_rate(model, batch, iters, device, autocast)
            floor = attack_floor.seconds({k: batch * passes * n for k, n in per_image.items()})
            ratios[model.name] = seconds / floor
            print(
                f"{model.name}: {total / 1e9:.3f} GFLOP per image forward+backward ({share(per_image)}); attack "
                f"{batch * iters / seconds:.1f} images x iterations/s ({seconds:.2f} s, floor {floor:.3f} s): "
                f"ratio {seconds / floor:.2f}"
            )
        if "explain" in parts:
            e_seconds, e_flops = explain_rate(model, n_explain, ig_steps, device)
            e_floor = explain_floor.seconds(e_flops)
            print(
                f"{model.name}: explain {n_explain / e_seconds:.2f} images/s ({e_seconds:.2f} s, "
                f"{sum(e_flops.values()) / 1e9:.1f} GFLOP, floor {e_floor:.3f} s): ratio {e_seconds / e_floor:.2f}"
            )
    if gpu and current_precisions() != precisions:  # the floor was read before the models and attacks were imported
        print(f"warning: PyTorch's FP32 precision flags changed during the run, to {current_precisions()}")
    if ratios:
        print(f"ratio_to_floor: {ratios.get('wrn-28-10', next(iter(ratios.values()))):.2f}")


if __name__ == "__main__":
    main()
