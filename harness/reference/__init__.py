"""The reference encoder / judge that scores feature visualisations (never itself on the leaderboard).

Inception-v3 weights (the seed paper's FID features) cannot be downloaded here, so, as MNIST GAN papers compute
FID with a LeNet, robint-bench ships one Fashion-MNIST classifier trained by its own trainer solely for scoring:
``gap-cnn-wide`` (48/96 channels, 192-d pooled features; no leaderboard model uses this architecture), seed 17,
standard (non-adversarial) training, so that it is no more aligned with robust models than with standard ones.
Its 192-d penultimate features are the space of FID and of inversion distances, and its top-1 prediction is the
"judge" of generated images. Limits: it is a small model trained on Fashion-MNIST only (its features are far
less general than Inception's, so the numbers are comparable within robint-bench, not with published FIDs),
and it judges with a standard model's notion of each class.

The weights file is verified against the sha256 below before it is loaded; a mismatch is an error, never a
silently different encoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from harness.core.errors import HarnessError

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ReferenceSpec:
    dataset: str
    weights: str
    sha256: str
    architecture: str
    in_channels: int
    num_classes: int
    clean_acc: float
    command: str


REFERENCES: dict[str, ReferenceSpec] = {
    "fashion-mnist": ReferenceSpec(
        dataset="fashion-mnist",
        weights="fmnist_judge.pt",
        sha256="ecf03582d32886d648aa826a60590d143f83534943aefa0226c772aef0899db6",
        architecture="gap-cnn-wide",
        in_channels=1,
        num_classes=10,
        clean_acc=0.878,  # first 1000 test images, at the end of training
        # run on 1 CPU thread in 1487 s; the .pt it wrote was copied here (the generated .py is not needed)
        command="robint-bench train --method standard --arch gap-cnn-wide --seed 17 --epochs 3 "
        "--out /tmp/judge/fmnist_judge.py",
    )
}


def reference_spec(dataset: str) -> ReferenceSpec | None:
    """The reference encoder of ``dataset``, or None when robint-bench ships none for it."""
    return REFERENCES.get(dataset)


def load_reference(dataset: str, directory: Path = HERE) -> nn.Module:
    """The verified reference classifier of ``dataset`` (eval mode, CPU); its features come from its last linear
    layer's input (metrics.featurevis.representation).

    Raises:
        HarnessError: no reference for the data set, the weights file is missing, or its sha256 differs.
    """
    from harness.core.weights import load_weights, sha256_file
    from harness.train.architectures import build

    spec = reference_spec(dataset)
    if spec is None:
        raise HarnessError(
            f"robint-bench ships no reference encoder for {dataset}",
            "feature-visualisation scores that need it are skipped for this data set",
        )
    path = directory / spec.weights
    if not path.is_file():
        raise HarnessError(
            f"the reference encoder {path} is missing",
            "restore it from the repository: git checkout -- harness/reference",
        )
    digest = sha256_file(path)
    if digest != spec.sha256:
        raise HarnessError(
            f"the reference encoder {path.name} has sha256 {digest[:12]}…, expected {spec.sha256[:12]}…",
            "restore it from the repository: git checkout -- harness/reference",
        )
    model = build(spec.architecture, in_channels=spec.in_channels, num_classes=spec.num_classes)
    model.load_state_dict(load_weights(path))
    return model.eval()


__all__ = ["REFERENCES", "ReferenceSpec", "load_reference", "reference_spec"]
