"""What a run's feature visualisation computes (``FeatureVisConfig``, part of its stored settings).

Defaults, chosen so that one model costs about two minutes of CPU time on Fashion-MNIST: the first 32 test images
are inverted from two seeds each (another test image of a different class, and grey noise) with L2 steps of size 1
(the paper's step) until each image's loss has converged (``inversion_window`` / ``inversion_tol``, see
metrics.featurevis.inversion) or ``inversion_steps`` (the cap) is reached; 30 images per class are generated (60
steps, L2 budget 15, step 0.25; see metrics.featurevis.generation). The seed paper uses 10,000 inversion steps on
CIFAR-10.
"""

from __future__ import annotations

from dataclasses import dataclass

SEED_KINDS: tuple[str, ...] = ("other image", "noise")


@dataclass(frozen=True)
class FeatureVisConfig:
    """What a run's feature visualisation computes; part of its stored settings.

    ``inversion_steps`` is the cap on gradient steps per inverted image; an image stops earlier when its lowest loss
    fell by at most ``inversion_tol`` (relative) over the last ``inversion_window`` steps (``inversion_tol=0``:
    every image runs to the cap).
    """

    n_inversion: int = 32
    inversion_steps: int = 2000
    inversion_step_size: float = 1.0
    inversion_window: int = 100
    inversion_tol: float = 0.01
    noise_amplitude: float = 0.05
    per_class: int = 30
    generation_steps: int = 60
    generation_eps: float = 15.0
    generation_step_size: float = 0.25
    downsample: int = 4
    seed: int = 0
    batch_size: int = 256

    def validate(self) -> None:
        names = ("n_inversion", "inversion_steps", "inversion_window", "per_class", "generation_steps", "downsample")
        for name in (*names, "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"featurevis {name} must be a positive integer, got {value!r}")
        if self.n_inversion < 2:
            raise ValueError("featurevis n_inversion must be at least 2 (each target is seeded with another image)")
        for name in ("inversion_step_size", "generation_eps", "generation_step_size"):
            if not _number(getattr(self, name)) or not getattr(self, name) > 0:
                raise ValueError(f"featurevis {name} must be positive, got {getattr(self, name)!r}")
        if not _number(self.inversion_tol) or not 0 <= self.inversion_tol < 1:
            raise ValueError(f"featurevis inversion_tol must lie in [0, 1), got {self.inversion_tol!r}")
        if not _number(self.noise_amplitude) or not 0 <= self.noise_amplitude <= 0.5:
            raise ValueError(f"featurevis noise_amplitude must lie in [0, 0.5], got {self.noise_amplitude!r}")


def _number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


__all__ = ["SEED_KINDS", "FeatureVisConfig"]
