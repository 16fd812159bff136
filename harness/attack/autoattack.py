"""AutoAttack (PyPI ``pyautoattack``) with progress, captured warnings, and verification of what it returns (the
attacks ``--attack`` names are the entries of harness.attack.registry)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pyautoattack import AutoAttack
from torch import nn
from tqdm.auto import tqdm

from harness.attack.verify import verify_adversarial
from harness.core.device import predict_logits

MAX_WARNINGS = 32  # distinct AutoAttack warnings kept per call (harness.pipeline.validate accepts as many)


@dataclass
class AttackOutcome:
    """Verified adversarial examples and the model's re-evaluated predictions on them."""

    x_adv: torch.Tensor  # (N, C, H, W), CPU
    adv_pred: torch.Tensor  # (N,) the model's prediction on x_adv, re-run by the harness
    perturbation: torch.Tensor  # (N,) float64 norm of x_adv - x in the threat model's norm
    accuracy_after: dict[str, float] = field(default_factory=dict)  # AutoAttack's own log, per attack
    warnings: list[str] = field(default_factory=list)  # AutoAttack's checks (randomness, Square...)


def progress_label(attack: str, n: int) -> str:
    """The progress bar's label for one attack on the ``n`` points still robust.

    >>> progress_label("apgd-ce", 1), progress_label("square", 250)
    ('AutoAttack apgd-ce on 1 point', 'AutoAttack square on 250 points')
    """
    return f"AutoAttack {attack} on {n} point{'' if n == 1 else 's'}"


def run_autoattack(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    threat_model: str,
    eps: float,
    version: str = "standard",
    attacks: list[str] | None = None,
    seed: int = 0,
    batch_size: int = 250,
    device: torch.device | str = "cpu",
    progress: bool = True,
    state_path: Path | None = None,
) -> AttackOutcome:
    """Run AutoAttack on ``x`` ``(N, C, H, W)`` in [0,1] with labels ``y`` ``(N,)``; verify and re-evaluate.

    ``version``: AutoAttack's ``standard``, ``plus`` or ``rand``, or ``custom`` with ``attacks``, a list of its
    sub-attacks (the entries of harness.attack.registry say which).

    Raises:
        HarnessError: when an adversarial example leaves the eps-ball or [0,1] (nothing is returned then).
    """
    counter = _ForwardCounter(model)
    adversary = AutoAttack(
        counter, attacks=attacks, device=device, eps=eps, norm=threat_model, seed=seed, version=version
    )
    with capture_autoattack_log(
        progress=progress, adversary=adversary, counter=counter, n=len(y), batch_size=batch_size
    ) as log:
        x_adv, _ = adversary.run_standard_evaluation(x, y, batch_size=batch_size, state_path=state_path)
    x_adv = x_adv.detach().cpu()
    norms = verify_adversarial(x.cpu(), x_adv, threat_model=threat_model, eps=eps)
    adv_pred = predict_logits(model, x_adv, batch_size=batch_size, device=torch.device(device)).argmax(1)
    return AttackOutcome(x_adv, adv_pred, norms, log.accuracy_after, log.warnings)


class _ForwardCounter(nn.Module):
    """Passes through to the model, calling ``on_forward`` per pass: drives the progress bars' ETA."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.on_forward = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.on_forward is not None:
            self.on_forward()
        return self.model(x)


def _forwards_per_batch(adversary: AutoAttack, attack: str) -> int:
    """Approximate forward passes one batch of ``attack`` costs (for the progress bar's total)."""
    apgd, targeted = adversary.apgd, adversary.apgd_targeted
    return {
        "apgd-ce": apgd.n_restarts * (apgd.n_iter * apgd.eot_iter + 1) + 1,
        "apgd-dlr": apgd.n_restarts * (apgd.n_iter * apgd.eot_iter + 1) + 1,
        "apgd-t": targeted.n_target_classes * (targeted.n_iter + 1) + 1,
        "fab": adversary.fab.n_restarts * 2 * adversary.fab.n_iter + 1,
        "fab-t": adversary.fab.n_target_classes * 2 * adversary.fab.n_iter + 1,
        "square": adversary.square.n_queries + 2,
    }.get(attack, 1)


@dataclass
class _AutoAttackLog:
    accuracy_after: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class _ProgressHandler(logging.Handler):
    """Turns pyautoattack's debug log into one progress bar per attack and records its numbers."""

    _after = re.compile(r"^robust accuracy after (?P<attack>[\w-]+): (?P<acc>[\d.]+)%")
    _initial = re.compile(r"^initial accuracy: (?P<acc>[\d.]+)%")

    def __init__(self, log: _AutoAttackLog, progress: bool, adversary, counter, n: int, batch_size: int) -> None:
        super().__init__(logging.DEBUG)
        self.log, self.progress, self.bar = log, progress, None
        self.adversary, self.counter, self.n, self.batch_size = adversary, counter, n, batch_size
        self.robust = n

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            if msg not in self.log.warnings and len(self.log.warnings) < MAX_WARNINGS:  # the parent takes 32
                self.log.warnings.append(msg)
        elif m := self._initial.match(msg):
            self.log.accuracy_after["clean"] = float(m["acc"]) / 100
            self.robust = round(float(m["acc"]) / 100 * self.n)
        elif msg.startswith("running ") and self.progress:
            self._start_bar(msg[len("running ") :])
        elif m := self._after.match(msg):
            self.log.accuracy_after[m["attack"].lower()] = float(m["acc"]) / 100
            self.robust = round(float(m["acc"]) / 100 * self.n)
            self._stop_bar()

    def _start_bar(self, attack: str) -> None:
        self._stop_bar()
        batches = max(1, -(-self.robust // self.batch_size))
        total = batches * _forwards_per_batch(self.adversary, attack)
        self.bar = tqdm(desc=progress_label(attack, self.robust), total=total, unit="fwd", leave=False)
        self.counter.on_forward = self.bar.update

    def _stop_bar(self) -> None:
        self.counter.on_forward = None
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        self._stop_bar()
        super().close()


@contextmanager
def capture_autoattack_log(
    *, progress: bool, adversary: AutoAttack, counter: _ForwardCounter, n: int, batch_size: int
) -> Iterator[_AutoAttackLog]:
    """Attach a handler to the ``auto-attack`` logger for the duration of one evaluation."""
    log = _AutoAttackLog()
    logger = logging.getLogger("auto-attack")
    handler = _ProgressHandler(log, progress, adversary, counter, n, batch_size)
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield log
    finally:
        handler.close()
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
