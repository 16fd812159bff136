"""Speed and agreement of the batched MPRT variants (metrics.functional) against Quantus 0.6.0's EfficientMPRT and
SmoothMPRT (Hedström et al. 2023).

    python bench/mprt_variants_vs_quantus.py [--device auto|cpu|cuda] [--n 64] [--samples 50] [--batch-size B]
                                             [--model submissions/fmnist_standard.py] [--threads T]

Both sides get the same model, the first ``--n`` Fashion-MNIST test images and captum Saliency maps (``|grad|``)
as ``a_batch``; layers are re-initialised bottom-up from the same RNG state (Quantus ``seed=42``, ours a generator
seeded 43). Settings (Quantus defaults unless stated):

- EfficientMPRT: discrete entropy with 100 bins, ``abs=False``; Quantus explains the trained model again, ours
  reuses the given maps (``attributions=``), as the suite would.
- SmoothMPRT: ``nr_samples=--samples`` (default 50), ``noise_magnitude=0.1``, ``abs=True``, ``normalise=True`` (a
  positive factor per batch: no effect on Spearman), per layer; Quantus explains with ``quantus.explain(method=
  "Saliency")``, ours with captum Saliency; Quantus's noise draws are recorded and passed to ours, and Quantus's
  "original" entry (not computed by ours) is left out of the comparison.

Quantus runs with ``batch_size=min(n, 256)``, ours with ``--batch-size`` images per explain call (default 256 on CPU,
8192 on CUDA), so SmoothMPRT's float32 gradients may differ in the last bits (batch composition). On CUDA the
values are not compared (Quantus re-initialises CUDA layers from the CUDA RNG, ours always on CPU). Times are
wall-clock seconds of one call each. Prints one line per metric, then exactly ``min speedup: S max abs diff: D``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import quantus
import torch
from captum.attr import Saliency

import metrics.functional as F
from harness.data import load_examples
from harness.worker.submission import load_submission

ROOT = Path(__file__).resolve().parents[1]


def saliency(model, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return Saliency(model).attribute(x, target=target, abs=True).detach()


def quantus_explainer(device: torch.device):
    def explain(model, inputs, targets, **kwargs) -> np.ndarray:
        x = torch.as_tensor(np.asarray(inputs), dtype=torch.float32, device=device)
        t = torch.as_tensor(np.asarray(targets), dtype=torch.int64, device=device)
        return saliency(model, x, t).cpu().numpy()

    return explain


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def record_randn() -> tuple[list[np.ndarray], Callable[[], None]]:
    """Record every array ``np.random.randn`` returns until the returned ``stop`` is called."""
    original, calls = np.random.randn, []

    def recording(*args):
        value = original(*args)
        calls.append(np.asarray(value))
        return value

    np.random.randn = recording

    def stop() -> None:
        np.random.randn = original

    return calls, stop


def run_cases(model, x, y, a, device: torch.device, batch_size: int, n_samples: int) -> list[tuple[str, float, float]]:
    n, qdev = x.shape[0], ("cuda" if device.type == "cuda" else "cpu")
    call = dict(model=model, x_batch=x.cpu().numpy(), y_batch=y.cpu().numpy(), a_batch=a.cpu().numpy(), device=qdev)
    call["batch_size"] = min(n, 256)
    layers = F.randomisable_layers(model, "bottom_up")
    results = []

    def report(name: str, tq: float, to: float, q: np.ndarray, ours: torch.Tensor) -> None:
        diff = float("nan") if device.type == "cuda" else float(np.abs(q - ours.cpu().double().numpy()).max())
        results.append((name, tq, to, diff))
        print(f"{name:<14} quantus {tq:8.2f} s   ours {to:7.2f} s   ratio {tq / to:7.2f}   max abs diff {diff:.2e}")

    metric = quantus.EfficientMPRT(seed=42, disable_warnings=True)
    tq, q = timed(lambda: metric(**call, explain_func=quantus_explainer(device)), device)
    to, ours = timed(
        lambda: F.efficient_model_parameter_randomisation(
            model, x, y, saliency, attributions=a, batch_size=batch_size, generator=torch.Generator().manual_seed(43)
        ),
        device,
    )
    report("EfficientMPRT", tq, to, np.asarray(q, dtype=np.float64), ours)

    metric = quantus.SmoothMPRT(seed=42, nr_samples=n_samples, disable_warnings=True)
    draws, stop = record_randn()
    try:
        kwargs = dict(explain_func=quantus_explainer(device), explain_func_kwargs=dict(method="Saliency"))
        tq, q = timed(lambda: metric(**call, **kwargs), device)
    finally:
        stop()
    per_state = n_samples - 1
    states = [np.stack(draws[i : i + per_state]) for i in range(per_state, len(draws), per_state)]  # skip "original"
    noise = torch.from_numpy(np.stack(states)).to(device) if per_state else None
    options = dict(n_samples=n_samples, attributions=a, noise=noise, batch_size=batch_size)
    generator = torch.Generator().manual_seed(43)
    to, ours = timed(
        lambda: F.smooth_model_parameter_randomisation(model, x, y, saliency, **options, generator=generator), device
    )
    report("SmoothMPRT", tq, to, np.array([q[name] for name in layers], dtype=np.float64).T, ours)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--samples", type=int, default=50, help="SmoothMPRT's nr_samples")
    parser.add_argument("--model", type=Path, default=ROOT / "submissions" / "fmnist_standard.py")
    parser.add_argument("--batch-size", type=int, default=None, help="images per explain call (ours)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads for both sides (0: torch's default)")
    args = parser.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    batch_size = args.batch_size or (8192 if device.type == "cuda" else 256)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    sub = load_submission(args.model)
    model = sub.model.to(device).eval()
    x, y = load_examples(sub.metadata["dataset"], n=args.n, data_dir=args.data_dir)
    x, y = x.to(device), y.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    a = saliency(model, x, y)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"# {sub.name} on {device} ({name}, {torch.get_num_threads()} threads), n={args.n}, samples={args.samples}, "
        f"batch_size={batch_size}, torch {torch.__version__}, quantus {quantus.__version__}"
    )
    results = run_cases(model, x, y, a, device, batch_size, args.samples)
    speedup = min(tq / to for _, tq, to, _ in results)
    diffs = [d for *_, d in results if not np.isnan(d)]
    print(f"min speedup: {speedup:.2f} max abs diff: {max(diffs) if diffs else float('nan'):.2e}")


if __name__ == "__main__":
    main()
