"""What training prints while it runs: the running mean loss of the epoch (on the progress bar) and a summary line
per epoch with the time left (the mean epoch time so far times the epochs left)."""

from __future__ import annotations

import torch


class RunningMean:
    """The mean of the losses added so far in an epoch. Losses are summed on their device and read (one
    synchronisation) only when the mean is shown."""

    def __init__(self) -> None:
        self.total: torch.Tensor | float = 0.0
        self.count = 0

    def add(self, loss: torch.Tensor | float) -> None:
        self.total = self.total + (loss.detach() if isinstance(loss, torch.Tensor) else loss)
        self.count += 1

    @property
    def mean(self) -> float:
        """The mean so far (NaN before the first loss)."""
        if not self.count:
            return float("nan")
        return float(self.total) / self.count


def eta(epoch_seconds: list[float], epochs_left: int) -> float:
    """Seconds left: the mean of the epochs timed so far times the epochs left (0 when none is left or timed).

    >>> eta([40.0, 44.0], 3)
    126.0
    """
    if not epoch_seconds or epochs_left <= 0:
        return 0.0
    return sum(epoch_seconds) / len(epoch_seconds) * epochs_left


def clock(seconds: float) -> str:
    """``45 s``, ``2.5 min``, ``1.7 h`` (the report's wording; training sits below the report layer).

    >>> clock(44.6), clock(150), clock(6000)
    ('45 s', '2.5 min', '1.7 h')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def epoch_summary(
    epoch: int,
    epochs: int,
    mean_loss: float,
    seconds: float,
    cpu_seconds: float,
    epoch_seconds: list[float],
    note: str = "",
) -> str:
    """One line after epoch ``epoch`` (1-based) of ``epochs``: its mean loss, its wall and CPU time, ``note`` (e.g.
    the held-out check), and the time left.

    >>> epoch_summary(2, 5, 0.4567, 41.0, 80.0, [39.0, 41.0])
    'epoch 2/5: mean loss 0.457, 41 s (CPU 80 s); about 2.0 min left (3 epochs)'
    >>> epoch_summary(5, 5, 0.3, 40.0, 79.0, [40.0] * 5)
    'epoch 5/5: mean loss 0.300, 40 s (CPU 79 s); done'
    """
    left = epochs - epoch
    line = f"epoch {epoch}/{epochs}: mean loss {mean_loss:.3f}, {clock(seconds)} (CPU {clock(cpu_seconds)}){note}"
    if left <= 0:
        return line + "; done"
    return line + f"; about {clock(eta(epoch_seconds, left))} left ({left} epoch{'s' if left != 1 else ''})"
