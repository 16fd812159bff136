"""The images a worker works on, sent by the parent: a worker reads no data (its sandbox keeps every data
directory out of its reach), so the parent sends the run's test images, the explainers' background and the training
split for feature visualisation in ``images`` requests (harness.worker.protocol.ImagesRequest), in blocks of at
most :data:`BLOCK_BYTES`; 8-bit images travel as uint8 (harness.worker.protocol.pack_images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from harness.core.errors import HarnessError
from harness.data import load_examples
from harness.worker.protocol import ImagesRequest, pack_images
from metrics.attribution import METHODS
from metrics.suite import SuiteConfig

BLOCK_BYTES = 64 << 20  # the most bytes of images one request carries


def send_images(channel, split: str, x: torch.Tensor, y: torch.Tensor, budget: float | None) -> None:
    """Send ``x`` ``(N, C, H, W)`` in [0, 1] with labels ``y`` ``(N,)`` as the worker's ``split``."""
    packed, scale = pack_images(x.numpy())
    labels = y.numpy().astype(np.int64)
    per = max(1, BLOCK_BYTES // max(1, packed[:1].nbytes))
    for start in range(0, max(1, len(packed)), per):
        reply = channel.request(
            ImagesRequest(
                op="images",
                split=split,
                start=start,
                total=len(packed),
                x=packed[start : start + per],
                y=labels[start : start + per],
                scale=scale,
            ),
            budget=budget,
        )
        if set(reply) != {"op"} or reply["op"] != "stored":
            raise HarnessError(
                "the worker answered an images request with a malformed reply",
                "the submission may be tampering with the worker; run it with --trusted --debug to investigate",
            )


def background(suite: SuiteConfig, dataset: str, data_dir: Path) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The training images the suite's explainers take as background (``n_background`` of them, drawn with the
    suite's seed), or None when no method of the suite needs any."""
    if not any(METHODS.get(m).needs_background for m in suite.methods):
        return None
    x_train, y_train = load_examples(dataset, split="train", data_dir=data_dir)
    pick = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(suite.seed))[: suite.n_background]
    return x_train[pick], y_train[pick]


def send_background(channel, suite: SuiteConfig, dataset: str, data_dir: Path, budget: float | None) -> None:
    """Send the suite's background images (:func:`background`), when it needs any."""
    picked = background(suite, dataset, data_dir)
    if picked is not None:
        send_images(channel, "background", *picked, budget)
