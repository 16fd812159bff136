"""Speed and agreement of robint-bench's batched metrics (metrics.functional) against Quantus 0.6.0.

    python bench/metrics_vs_quantus.py [--device auto|cpu|cuda] [--n 256] [--model submissions/fmnist_standard.py]
                                       [--batch-size B] [--threads T]

Both sides get the same model, the first ``--n`` Fashion-MNIST test images, the same captum Saliency maps
(``|grad|``) and, where the metric is random, Quantus's own draws (recorded while it runs and passed to ours as
explicit subsets / noise). Settings (Quantus defaults unless stated):

- PixelFlipping: ``features_in_step=28`` (28 steps of 28 pixels), ``perturb_baseline=0.0`` (black); ours
  ``perturbation_curve(order="morf", mode="deletion", baseline="black", n_steps=28)``; compared: whole curves.
- RegionPerturbation: ``patch_size=4``, all 49 regions, MoRF, ``perturb_baseline=0.0``; ours ``patch_size=4``.
- FaithfulnessCorrelation: 100 runs of 224 pixels, black, logits, ``normalise=False``, per example.
- Infidelity(black): patches of 4, ``perturb_baseline=0.0``, ``n_perturb_samples=1`` (more repetitions are
  identical with a deterministic baseline). Infidelity(uniform): patches of 7, 4 repetitions of uniform patch fills.
- RelevanceMassAccuracy / RelevanceRankAccuracy / PointingGame: masks = the garment (x > 0).
- Focus: ``n/4`` 2x2 mosaics (56x56) of consecutive images, target = the image in cell ``i % 4``, Saliency of the
  mosaic; ours ``grid_pointing_game``.
- MPRT: top-down cascade, seed 42 (ours: generator seeded 43), Spearman of |a|, per layer. On CUDA the values
  are not compared: Quantus re-initialises CUDA layers from the CUDA RNG, ours always on CPU (device-independent).
- MaxSensitivity: radius 0.2, 20 samples (Quantus's default 200 costs 10x more on both sides).
- Sparseness: defaults (Quantus's 1e-7 offset makes it differ from the exact Gini index by up to ~1e-4).

Quantus runs with ``batch_size=min(n, 256)`` (one chunk: its fastest setting here), ours with ``--batch-size``
images per forward pass (default 256 on CPU, where larger batches are no faster, and 8192 on CUDA). Times are
wall-clock seconds of one call each, after a warm-up (on CUDA, one pass over 8 images; TF32 off on both sides).
Each line also says how many images Quantus's call ran through the model, what share of its time those forward
passes alone take when replayed (same shapes, no gradients), and how many images ours ran: an implementation that
runs the same forward passes cannot be faster than ``100 / share`` times, whatever it does around them (ours skips
the steps that change no pixel, and batches across steps and examples).
Prints one line per metric, then exactly ``min speedup: S max abs diff: D`` (D over the compared metrics).
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


class Recorder:
    """Record every array ``np.random.<name>`` returns while active (Quantus's own random draws)."""

    def __init__(self, name: str) -> None:
        self.name, self.calls = name, []

    def __enter__(self) -> list[np.ndarray]:
        self.original = getattr(np.random, self.name)

        def recording(*args, **kwargs):
            value = self.original(*args, **kwargs)
            self.calls.append(np.asarray(value))
            return value

        setattr(np.random, self.name, recording)
        return self.calls

    def __exit__(self, *exc) -> None:
        setattr(np.random, self.name, self.original)


class ForwardLog:
    """Record the input shape of every forward pass of ``model`` while active (Quantus's own model calls)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.shapes = model, []

    def __enter__(self) -> list[torch.Size]:
        self.handle = self.model.register_forward_hook(lambda _m, inputs, _out: self.shapes.append(inputs[0].shape))
        return self.shapes

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def replay_forwards(model: torch.nn.Module, shapes: list[torch.Size], device: torch.device) -> float:
    """Seconds the model alone takes for forward passes of these input shapes (no gradients): the part of a
    Quantus call that any implementation running the same forward passes must pay."""
    if not shapes:
        return 0.0
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.rand(shape, generator=generator).to(device) for shape in shapes]

    def run() -> None:
        with torch.inference_mode():
            for images in inputs:
                model(images)

    return timed(run, device)[0]


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, object]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def run_cases(
    model, x, y, a, device: torch.device, batch_size: int, verbose: bool = True
) -> list[tuple[str, float, float, float]]:
    n = x.shape[0]
    qbs = min(n, 256)
    xn, yn, an = x.cpu().numpy(), y.cpu().numpy(), a.cpu().numpy()
    mask = x > 0
    sn = mask.float().cpu().numpy()
    qdev = "cuda" if device.type == "cuda" else "cpu"
    explain_q = quantus_explainer(device)
    results = []

    def compare(
        name, quantus_call, ours_call, to_numpy=lambda out: out.cpu().numpy(), record=None, reshape=None, note=None
    ):
        with ForwardLog(model) as shapes:
            if record is not None:
                with Recorder(record) as draws:
                    tq, q = timed(quantus_call, device)
                extra = reshape(draws)
            else:
                tq, q = timed(quantus_call, device)
                extra = None
        n_forward = sum(shape[0] for shape in shapes)
        t_forward = replay_forwards(model, shapes, device)
        with ForwardLog(model) as our_shapes:
            to, ours = timed(lambda: ours_call(extra), device)
        n_ours = sum(shape[0] for shape in our_shapes)
        q_arr = np.asarray(q if not isinstance(q, dict) else [q[k] for k in q if k != "original"], dtype=np.float64)
        if isinstance(q, dict):
            q_arr = q_arr.T
        diff = float(np.abs(q_arr - np.asarray(to_numpy(ours), dtype=np.float64)).max())
        results.append((name, tq, to, float("nan") if note else diff))
        if verbose:
            share = (
                f"{n_forward:>7} imgs ({100 * t_forward / tq:3.0f}% of its time), ours {n_ours:>7} imgs"
                if n_forward
                else "none"
            )
            print(
                f"{name:<26} quantus {tq:8.2f} s   ours {to:7.2f} s   ratio {tq / to:7.2f}   max abs diff {diff:.2e}"
                f"   quantus forwards: {share}" + (f" (not compared: {note})" if note else ""),
                flush=True,
            )

    kw = dict(disable_warnings=True)
    call = dict(model=model, x_batch=xn, y_batch=yn, a_batch=an, device=qdev, batch_size=qbs)

    compare(
        "PixelFlipping",
        lambda: quantus.PixelFlipping(features_in_step=28, perturb_baseline=0.0, **kw)(**call),
        lambda _: F.perturbation_curve(
            model, x, a, y, order="morf", mode="deletion", baseline="black", n_steps=28, batch_size=batch_size
        )[:, 1:],
    )
    compare(
        "RegionPerturbation",
        lambda: quantus.RegionPerturbation(patch_size=4, regions_evaluation=49, perturb_baseline=0.0, **kw)(**call),
        lambda _: (lambda c: c[:, :1] - c[:, 1:])(
            F.perturbation_curve(
                model, x, a, y, order="morf", mode="deletion", baseline="black", patch_size=4, batch_size=batch_size
            )
        ),
    )
    compare(
        "FaithfulnessCorrelation",
        lambda: quantus.FaithfulnessCorrelation(normalise=False, return_aggregate=False, **kw)(**call),
        lambda subsets: F.faithfulness_correlation(model, x, a, y, subsets=subsets, batch_size=batch_size),
        record="choice",
        reshape=lambda d: (
            torch.from_numpy(
                np.concatenate(
                    [np.stack(d[i : i + 100 * qbs]).reshape(100, -1, 224) for i in range(0, len(d), 100 * qbs)], axis=1
                )
            )
            .transpose(0, 1)
            .contiguous()
            .to(device)
        ),
    )
    compare(
        "Infidelity(black)",
        lambda: quantus.Infidelity(n_perturb_samples=1, perturb_baseline=0.0, **kw)(**call),
        lambda _: F.infidelity(model, x, a, y, patch_size=4, batch_size=batch_size),
    )
    compare(
        "Infidelity(uniform)",
        lambda: quantus.Infidelity(n_perturb_samples=4, perturb_patch_sizes=[7], perturb_baseline="uniform", **kw)(
            **call
        ),
        lambda noise: F.infidelity(model, x, a, y, patch_size=7, noise=noise, batch_size=batch_size),
        record="uniform",
        reshape=lambda d: (
            torch.from_numpy(
                np.concatenate(
                    [np.stack(d[i : i + 4 * 16]).reshape(4, 16, -1) for i in range(0, len(d), 4 * 16)], axis=2
                )
            )
            .float()
            .permute(2, 0, 1)
            .contiguous()
            .to(device)
        ),
    )
    compare(
        "RelevanceMassAccuracy",
        lambda: quantus.RelevanceMassAccuracy(**kw)(**call, s_batch=sn),
        lambda _: F.relevance_mass_accuracy(a, mask),
    )
    compare(
        "RelevanceRankAccuracy",
        lambda: quantus.RelevanceRankAccuracy(**kw)(**call, s_batch=sn),
        lambda _: F.relevance_rank_accuracy(a, mask),
    )
    compare("PointingGame", lambda: quantus.PointingGame(**kw)(**call, s_batch=sn), lambda _: F.pointing_game(a, mask))
    m = n // 4
    tiles = x[: 4 * m].reshape(m, 4, *x.shape[1:])
    mosaic = torch.cat([torch.cat([tiles[:, 0], tiles[:, 1]], 3), torch.cat([tiles[:, 2], tiles[:, 3]], 3)], 2)
    cell = torch.arange(m, device=device) % 4
    m_target = y[: 4 * m].reshape(m, 4).gather(1, cell[:, None]).squeeze(1)
    m_attr = saliency(model, mosaic, m_target)
    quadrants = [tuple(int(j == int(c)) for j in range(4)) for c in cell]
    compare(
        "Focus",
        lambda: quantus.Focus(**kw)(
            model=model,
            x_batch=mosaic.cpu().numpy(),
            y_batch=m_target.cpu().numpy(),
            a_batch=m_attr.cpu().numpy(),
            custom_batch=quadrants,
            device=qdev,
            batch_size=qbs,
        ),
        lambda _: F.grid_pointing_game(m_attr, cell),
    )
    compare(
        "MPRT",
        lambda: quantus.MPRT(seed=42, **kw)(**call, explain_func=explain_q),
        lambda _: F.model_parameter_randomisation(
            model, x, y, saliency, batch_size=batch_size, generator=torch.Generator().manual_seed(43)
        ),
        note="Quantus re-initialises CUDA layers with the CUDA RNG, ours on CPU" if device.type == "cuda" else None,
    )
    compare(
        "MaxSensitivity",
        lambda: quantus.MaxSensitivity(nr_samples=20, **kw)(**call, explain_func=explain_q),
        lambda noise: F.max_sensitivity(model, x, y, saliency, noise=noise, batch_size=batch_size),
        record="uniform",
        reshape=lambda d: (
            torch.from_numpy(np.concatenate([np.stack(d[i : i + 20]) for i in range(0, len(d), 20)], axis=1))
            .float()
            .reshape(20, n, *x.shape[1:])
            .transpose(0, 1)
            .contiguous()
            .to(device)
        ),
    )
    compare("Sparseness", lambda: quantus.Sparseness(**kw)(**call), lambda _: F.sparseness(a))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--model", type=Path, default=ROOT / "submissions" / "fmnist_standard.py")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="images per forward pass (ours); default 256 on CPU, 8192 on CUDA"
    )
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
    model = sub.model.to(device)
    x, y = load_examples(sub.metadata["dataset"], n=args.n, data_dir=args.data_dir)
    x, y = x.to(device), y.to(device)
    if device.type == "cuda":  # float32 convolutions on both sides, so that values agree to float32 precision
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    a = saliency(model, x, y)
    if device.type == "cuda":  # warm-up: CUDA kernels load lazily on first use
        run_cases(model, x[:8], y[:8], a[:8], device, batch_size, verbose=False)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"# {sub.name} on {device} ({name}, {torch.get_num_threads()} threads), n={args.n}, batch_size={batch_size}, "
        f"torch {torch.__version__}, quantus {quantus.__version__}"
    )
    results = run_cases(model, x, y, a, device, batch_size)
    speedup = min(tq / to for _, tq, to, _ in results)
    diff = max(d for *_, d in results if not np.isnan(d))
    print(f"min speedup: {speedup:.2f} max abs diff: {diff:.2e}")


if __name__ == "__main__":
    main()
