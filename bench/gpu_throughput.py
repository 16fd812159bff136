"""Throughput of the attack and the explain stage against the device's FLOP floor (GPU, or CPU for a dry run).

    python bench/gpu_throughput.py [--device cuda] [--models fmnist_standard,wrn-28-10] [--peak-tflops P]

For each model (the shipped ``fmnist_standard``, 28x28, and RobustBench's CIFAR-10 ``Standard`` architecture,
WideResNet-28-10 from robustbench's model-zoo code with random weights, 32x32):

- **FLOPs** of one forward and backward pass to the input, per image, counted by ``torch.utils.flop_counter``;
- **attack**: AutoAttack's APGD-CE (pyautoattack, as the harness runs it: float32, one restart, seeded) on a batch
  whose labels are the model's own predictions, so every image is attacked for every iteration; measured in
  images x iterations per second (each iteration, and the start, is one forward and backward pass);
- **explain**: the regression gate's suite (saliency and integrated gradients x ABPC, relative deletion, sparseness,
  plus the two controls; metrics.suite.run_suite) in images per second, its FLOPs counted over a whole run;
- **floor**: the time the counted FLOPs take at the device's peak. The peak comes from the spec sheets below
  (dense FP32 without tensor cores, the precision the harness computes in; ``--peak tf32`` takes the TF32
  tensor-core peak, which cuDNN may use for convolutions), or is measured on the CPU (the best of a few large
  float32 matrix products, stated as measured), or given with ``--peak-tflops``.

``ratio = measured time / floor time`` (1 is the floor; the target for the attack on a GPU is at most 1.5). Its last
line, read by scripts, is ``ratio_to_floor: R``: the attack's ratio for the RobustBench architecture (the model
size the benchmark is run at; the 28x28 model is too small to fill a GPU and is reported for reference).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
# dense peak TFLOP/s per device from the vendors' spec sheets: (FP32 without tensor cores, TF32 tensor cores)
PEAKS = {
    "H200": (67.0, 494.7),
    "H100 SXM": (67.0, 494.7),
    "H100 PCIe": (51.2, 378.0),
    "H100": (67.0, 494.7),
    "A100": (19.5, 156.0),
    "L40S": (91.6, 183.0),
    "L4": (30.3, 60.0),
    "A10": (31.2, 62.5),
    "RTX 4090": (82.6, 82.6),
    "RTX 3090": (35.6, 35.6),
    "V100": (15.7, 15.7),
    "T4": (8.1, 8.1),
}


@dataclass
class Model:
    name: str
    net: nn.Module
    shape: tuple[int, int, int]
    x: torch.Tensor | None = None  # real images when there are some, else random ones
    y: torch.Tensor | None = None


def load_models(names: list[str], device: torch.device) -> list[Model]:
    out = []
    for name in names:
        if name == "fmnist_standard":
            from harness.data import load_examples
            from harness.worker.submission import load_submission

            net = load_submission(ROOT / "submissions" / "fmnist_standard.py").model
            x, y = load_examples("fashion-mnist", n=256)
            out.append(Model(name, net, (1, 28, 28), x, y))
        elif name == "wrn-28-10":
            from harness._autoattack_shim import import_robustbench

            import_robustbench()
            from robustbench.model_zoo.architectures.wide_resnet import WideResNet

            torch.manual_seed(0)
            out.append(Model(name, WideResNet(depth=28, widen_factor=10), (3, 32, 32)))
        else:
            raise SystemExit(f"unknown model {name!r}: use fmnist_standard or wrn-28-10")
    for m in out:
        m.net = m.net.to(device).eval()
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


def flops_forward_backward(net: nn.Module, shape: tuple[int, ...], device: torch.device) -> float:
    """FLOPs of one forward and backward pass to the input (not to the weights), per image (counted on 2 images)."""
    x = torch.rand(2, *shape, device=device, requires_grad=True)
    with flop_counter() as counter:
        loss = nn.functional.cross_entropy(net(x), torch.zeros(2, dtype=torch.long, device=device))
        torch.autograd.grad(loss, x)
    return counter.get_total_flops() / 2


def peak_flops(device: torch.device, kind: str, given: float | None) -> tuple[float, str]:
    """The device's peak FLOP/s and where the number comes from."""
    if given is not None:
        return given * 1e12, f"{given} TFLOP/s (given)"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (fp32, tf32) in PEAKS.items():
            if key.lower() in name.lower():
                value = fp32 if kind == "fp32" else tf32
                return value * 1e12, f"{value} TFLOP/s ({name}, dense {kind.upper()} from the spec sheet)"
        raise SystemExit(f"no spec-sheet peak for {name!r}: pass --peak-tflops")
    best = 0.0
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048**3 / (time.perf_counter() - start))
    return (
        best,
        f"{best / 1e9:.1f} GFLOP/s (measured: best 2048x2048 float32 matmul, {torch.get_num_threads()} threads)",
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def attack_rate(model: Model, batch: int, iters: int, device: torch.device) -> tuple[float, int]:
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
    apgd.perturb(x[: min(2, batch)], y[: min(2, batch)])  # warm-up (cuDNN algorithm choice, allocator)
    sync(device)
    start = time.perf_counter()
    apgd.perturb(x, y)
    sync(device)
    return time.perf_counter() - start, iters + 1


def explain_rate(model: Model, n: int, ig_steps: int, device: torch.device) -> tuple[float, float]:
    """Seconds of the explain stage on ``n`` images, and its FLOPs (counted in a second, untimed run)."""
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
    return seconds, counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="fmnist_standard,wrn-28-10")
    parser.add_argument("--batch", type=int, default=None, help="attack batch [default: 256 on a GPU, 8 on CPU]")
    parser.add_argument("--iters", type=int, default=None, help="APGD iterations [default: 100 on a GPU, 4 on CPU]")
    parser.add_argument("--n-explain", type=int, default=None, help="[default: 100 on a GPU, 2 on CPU]")
    parser.add_argument("--ig-steps", type=int, default=None, help="[default: 32 on a GPU, 4 on CPU]")
    parser.add_argument("--peak", choices=["fp32", "tf32"], default="fp32")
    parser.add_argument("--peak-tflops", type=float, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch or (256 if gpu else 8)
    iters = args.iters or (100 if gpu else 4)
    n_explain = args.n_explain or (100 if gpu else 2)
    ig_steps = args.ig_steps or (32 if gpu else 4)
    peak, source = peak_flops(device, args.peak, args.peak_tflops)
    print(f"device: {torch.cuda.get_device_name(device) if gpu else 'cpu'}; peak {source}")
    print(
        f"settings: attack batch {batch}, {iters} APGD-CE iterations; explain {n_explain} images, IG {ig_steps} steps"
    )
    ratios = {}
    for model in load_models(args.models.split(","), device):
        per_image = flops_forward_backward(model.net, model.shape, device)
        seconds, passes = attack_rate(model, batch, iters, device)
        attack_floor = batch * passes * per_image / peak
        attack_ratio = seconds / attack_floor
        print(
            f"{model.name}: {per_image / 1e9:.3f} GFLOP per image forward+backward; attack "
            f"{batch * iters / seconds:.1f} images x iterations/s ({seconds:.2f} s, floor {attack_floor:.3f} s): "
            f"ratio {attack_ratio:.2f}"
        )
        e_seconds, e_flops = explain_rate(model, n_explain, ig_steps, device)
        e_floor = e_flops / peak
        print(
            f"{model.name}: explain {n_explain / e_seconds:.2f} images/s ({e_seconds:.2f} s, {e_flops / 1e9:.1f} "
            f"GFLOP, floor {e_floor:.3f} s): ratio {e_seconds / e_floor:.2f}"
        )
        ratios[model.name] = attack_ratio
    print(f"ratio_to_floor: {ratios.get('wrn-28-10', attack_ratio):.2f}")


if __name__ == "__main__":
    main()
