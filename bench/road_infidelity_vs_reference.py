"""Speed and agreement of ROAD and Gaussian infidelity (metrics.functional) against Quantus 0.6.0 and captum, on CPU.

    python bench/road_infidelity_vs_reference.py [--n 64] [--samples 32] [--model submissions/fmnist_standard.py]
                                                 [--batch-size 256] [--threads T]

Both sides get the same model, the first ``--n`` Fashion-MNIST test images and the same captum Saliency maps
(``|grad|``):

- ROAD: ``quantus.ROAD()`` with its defaults (percentages 1, 3, ..., 99; noise 0.01; MoRF), one call with
  ``batch_size=n`` (Quantus 0.6.0 keeps only its first batch's results). Its ``np.random.randn`` draws and the
  indices it removes are recorded and passed to ours, ``road_curve(..., noise=z)``; compared: the accuracy per
  percentage (Quantus returns only the mean over examples).
- Infidelity (Yeh et al., Gaussian): ``captum.metrics.infidelity(normalize=True)`` with ``--samples`` perturbations
  ``I ~ N(0, 0.2^2)`` per image, pre-drawn and returned by its ``perturb_func`` (captum runs all n * samples images
  in one forward pass); ours ``infidelity_gaussian(..., perturbations=I)`` (optimal scaling); compared: per example.

Times are wall-clock seconds of one call each after a warm-up on 2 images. Prints one line per metric, then exactly
``min speedup: S max abs diff: D``.
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
from captum.metrics import infidelity as captum_infidelity
from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation

import metrics.functional as F
from harness.data import load_examples
from harness.worker.submission import load_submission

ROOT = Path(__file__).resolve().parents[1]


def timed(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def quantus_road(model, x, y, a) -> tuple[np.ndarray, torch.Tensor, list[float]]:
    """Quantus's ROAD accuracies per percentage, and its noise as ``(N, P, C, H, W)`` standard-normal draws."""
    removed, draws = [], []
    randn = np.random.randn

    def recording_randn(*shape):
        draws.append(randn(*shape))
        return draws[-1]

    def recording_imputation(arr, indices, **kwargs):
        removed.append(np.asarray(indices).copy())
        return quantus_imputation(arr=arr, indices=indices, **kwargs)

    metric = quantus.ROAD(perturb_func=recording_imputation, disable_warnings=True)
    np.random.randn = recording_randn
    try:
        out = metric(
            model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=a.numpy(), device="cpu", batch_size=x.shape[0]
        )
    finally:
        np.random.randn = randn
    n, p = x.shape[0], len(metric.percentages)
    z = torch.zeros(n, p, *x.shape[1:])
    for call, (idx, draw) in enumerate(zip(removed, draws, strict=True)):  # percentage-major, then example
        z[call % n, call // n].flatten(1)[:, idx] = torch.from_numpy(draw).float()
    return np.array(list(out.values())), z, list(metric.percentages)


def bench_road(model, x, y, a, batch_size: int) -> tuple[float, float, float]:
    (expected, z, percentages), t_ref = timed(lambda: quantus_road(model, x, y, a))
    ours, t_ours = timed(lambda: F.road_curve(model, x, a, y, percentages=percentages, noise=z, batch_size=batch_size))
    return t_ref, t_ours, float(np.abs(ours.mean(dim=0).numpy() - expected).max())


def bench_infidelity(model, x, y, a, n_samples: int, batch_size: int) -> tuple[float, float, float]:
    noise = 0.2 * torch.randn((x.shape[0], n_samples, *x.shape[1:]), generator=torch.Generator().manual_seed(0))
    flat = noise.reshape(-1, *x.shape[1:])

    def reference():
        with torch.no_grad():
            return captum_infidelity(
                model, lambda inputs: (flat, inputs - flat), x, a, target=y, n_perturb_samples=n_samples, normalize=True
            )

    expected, t_ref = timed(reference)
    ours, t_ours = timed(lambda: F.infidelity_gaussian(model, x, a, y, perturbations=noise, batch_size=batch_size))
    return t_ref, t_ours, float((ours.double() - expected.double()).abs().max())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--samples", type=int, default=32, help="infidelity perturbations per image")
    parser.add_argument("--model", type=Path, default=ROOT / "submissions" / "fmnist_standard.py")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward pass (ours)")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads for both sides (0: torch's default)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    np.random.seed(0)
    sub = load_submission(args.model)
    model = sub.model.cpu().eval()
    x, y = load_examples(sub.metadata["dataset"], n=args.n, data_dir=args.data_dir)
    a = Saliency(model).attribute(x, target=y, abs=True).detach()
    bench_road(model, x[:2], y[:2], a[:2], args.batch_size)  # warm-up
    bench_infidelity(model, x[:2], y[:2], a[:2], 2, args.batch_size)
    print(
        f"# {sub.name} on cpu ({torch.get_num_threads()} threads), n={args.n}, batch_size={args.batch_size}, "
        f"torch {torch.__version__}, quantus {quantus.__version__}"
    )
    results = [
        ("ROAD (quantus.ROAD, 50 percentages)", *bench_road(model, x, y, a, args.batch_size)),
        (
            f"infidelity_gaussian (captum, {args.samples} samples)",
            *bench_infidelity(model, x, y, a, args.samples, args.batch_size),
        ),
    ]
    for name, t_ref, t_ours, diff in results:
        print(f"{name}: reference {t_ref:.2f}s ours {t_ours:.2f}s speedup {t_ref / t_ours:.2f} max abs diff {diff:.2e}")
    speedup = min(t_ref / t_ours for _, t_ref, t_ours, _ in results)
    diff = max(d for *_, d in results)
    print(f"min speedup: {speedup:.2f} max abs diff: {diff:.2e}")


if __name__ == "__main__":
    main()
