"""Cost of the explain stage: today's default suite (controls and both fills; reliability apart) against the suite
before the controls issue (no controls, no ROAD columns, no EfficientMPRT, 12 GridPG composites), and the cost of
the reliability option, on the same model, images and background, in one process.

    python bench/explain_stage.py [--model submissions/fmnist_standard.py] [--n-explain 100] [--reliability]

Last line, read by scripts: ``ratio: R`` (R = new default seconds / previous default seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch

from harness.data import load_examples
from harness.worker.submission import load_submission
from metrics.suite import SuiteConfig, run_suite

PREVIOUS_METRICS = (
    "deletion_auc",
    "insertion_auc",
    "abpc",
    "deletion_relative",
    "faithfulness_correlation",
    "relevance_mass_ratio",
    "pointing_game",
    "gridpg",
    "randomisation",
    "sparseness",
)


def timed(model, x, y, pred, background, config: SuiteConfig) -> tuple[float, int]:
    start = time.perf_counter()
    scores = run_suite(
        model,
        x,
        y,
        pred,
        config=config,
        num_classes=10,
        has_object_masks=True,
        background=background,
        device=torch.device("cpu"),
        progress=False,
    )
    return time.perf_counter() - start, len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("submissions/fmnist_standard.py"))
    parser.add_argument("--n-explain", type=int, default=100)
    parser.add_argument("--reliability", action="store_true", help="also time the reliability option")
    args = parser.parse_args()
    model = load_submission(args.model).model.eval()
    x, y = load_examples("fashion-mnist", n=max(args.n_explain, 200))
    x_train, _ = load_examples("fashion-mnist", split="train")
    background = x_train[torch.randperm(len(x_train), generator=torch.Generator().manual_seed(0))[:200]]
    with torch.no_grad():
        pred = model(x).argmax(1)
    new = SuiteConfig(n_explain=args.n_explain)
    old = dataclasses.replace(
        new,
        metrics=PREVIOUS_METRICS,
        controls=(),
        n_composites=12,
        method_options=(*new.method_options, ("integrated_gradients", "output", "probability")),
    )
    t_old, n_old = timed(model, x, y, pred, background, old)
    t_new, n_new = timed(model, x, y, pred, background, new)
    print(f"previous default: {t_old:.1f} s ({n_old} scores); new default: {t_new:.1f} s ({n_new} scores)")
    if args.reliability:
        only = dataclasses.replace(new, methods=("saliency",), controls=(), reliability=True)
        t_rel, _ = timed(model, x, y, pred, background, only)
        print(f"reliability option (headline metrics, plus one saliency pass): {t_rel:.1f} s")
    print(f"ratio: {t_new / t_old:.2f}")


if __name__ == "__main__":
    main()
