"""Threat models and perturbation budgets: parsing ``8/255``-style eps and checking its range."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal

from harness.core.errors import HarnessError

ThreatModel = Literal["Linf", "L2"]
THREAT_MODELS: tuple[str, ...] = ("Linf", "L2")


def parse_threat_model(text: str) -> ThreatModel:
    """Normalise ``linf``/``Linf``/``l2`` to the canonical spelling."""
    for name in THREAT_MODELS:
        if text.lower() == name.lower():
            return name  # type: ignore[return-value]
    raise HarnessError(f"unknown threat model {text!r}", f"use one of: {', '.join(THREAT_MODELS)}")


def parse_eps(text: str | float) -> tuple[float, str]:
    """Parse an eps given as ``0.1``, ``8/255`` or a float; return (value, canonical text).

    >>> parse_eps("8/255")[1], round(parse_eps("8/255")[0], 6)
    ('8/255', 0.031373)
    """
    raw = str(text).strip()
    try:
        if "/" in raw:
            num, den = (part.strip() for part in raw.split("/", 1))
            if float(den) == 0:
                raise ZeroDivisionError
            value = float(num) / float(den)
            canonical = f"{_short(num)}/{_short(den)}"
        else:
            value = float(raw)
            canonical = _format_decimal(value)
    except (ValueError, ZeroDivisionError):
        raise HarnessError(
            f"malformed eps {raw!r}", "give a positive number such as 0.1 or a fraction such as 8/255"
        ) from None
    if not math.isfinite(value):
        raise HarnessError(f"malformed eps {raw!r}", "give a finite positive number such as 0.1 or 8/255")
    return value, canonical


def check_eps(threat_model: str, eps: float, input_numel: int) -> None:
    """Raise unless ``0 < eps <= max`` where max is the norm's diameter of [0,1]^D."""
    limit = 1.0 if threat_model == "Linf" else math.sqrt(input_numel)
    if not (0.0 < eps <= limit):
        raise HarnessError(
            f"eps {eps:g} is out of range for {threat_model} on inputs in [0,1]",
            f"use 0 < eps <= {limit:g} (e.g. 0.1 or 8/255 for Linf)",
        )


def eps_text(eps: float) -> str:
    """Canonical text for a float eps: ``8/255`` when it is k/255, else a short decimal.

    >>> eps_text(8 / 255), eps_text(0.1), eps_text(1.5)
    ('8/255', '0.1', '1.5')
    """
    frac = Fraction(eps).limit_denominator(255)
    if frac.denominator == 255 and abs(float(frac) - eps) < 1e-9:
        return f"{frac.numerator}/255"
    return _format_decimal(eps)


def _short(part: str) -> str:
    value = float(part)
    return str(int(value)) if value.is_integer() else _format_decimal(value)


def _format_decimal(value: float) -> str:
    return f"{value:.6g}"
