"""The schema of a submission's ``METADATA`` as its worker reports it (harness.pipeline.validate checks the rest of
what a worker sends): known keys with types, ranges and lengths, text without control characters, and a safe
character set for names, which also become file names (exports) and labels (reports). The primitives (names, text,
numbers) are harness.core.schema's, shared with the other schemas of untrusted data."""

from __future__ import annotations

import math
import re
from typing import Any

from harness.core import schema
from harness.core.errors import HarnessError
from harness.core.schema import CONTROL, NAME, NAME_RULE
from harness.core.threat import parse_eps, parse_threat_model
from harness.report.escape import terminal

__all__ = ["CONTROL", "NAME", "metadata", "text"]

TRAINING_METHOD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,31}")
_METADATA_FIX = "fix METADATA (see submissions/README.md)"

_TEXT_LIMITS = {
    "dataset": 300,
    "architecture": 200,
    "authors": 500,
    "paper": 500,
    "link": 500,
    "title": 300,
    "venue": 200,
    "weights": 255,
    "source": 64,
    "robustbench_id": 100,
}
_EXTRA_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_MAX_EXTRA_KEYS = 32


def metadata(raw: Any) -> dict[str, Any]:
    """A validated copy of the METADATA a worker reports; ``HarnessError`` naming the first problem.

    Keys: ``name`` (harness.core.schema.NAME: 1-64 ASCII letters, digits, ``_`` or ``-``, starting with a letter or
    digit: RobustBench's model-id alphabet), ``dataset``,
    ``architecture`` (text), optional ``threat_model`` (Linf or L2), ``eps`` (a positive number or text such as
    ``8/255``), ``clean_acc`` (a number in [0, 1]), ``weights``, ``authors``, ``paper`` and other short text,
    ``additional_data`` (bool), ``number_forward_passes`` (a positive integer) and ``training`` (a dict of short
    scalars; its ``method`` is a name like ``pgd-at``). Text has no control characters. Other keys: at most 32
    identifiers with short scalar values.
    """
    if not isinstance(raw, dict):
        raise HarnessError(f"METADATA is a {type(raw).__name__}, not a dict", _METADATA_FIX)
    out: dict[str, Any] = {}
    name = raw.get("name")
    if not schema.is_name(name):
        raise HarnessError(f"METADATA name {terminal(name, 80)!r} is not {NAME_RULE}", _METADATA_FIX)
    out["name"] = name
    for key in ("dataset", "architecture"):
        out[key] = text(raw.get(key), f"METADATA {key}", _TEXT_LIMITS[key], required=True)
    extra = 0
    for key, value in raw.items():
        if key in ("name", "dataset", "architecture"):
            continue
        where = f"METADATA {terminal(key, 40)}"
        if key == "threat_model":
            out[key] = None if value is None else parse_threat_model(text(value, where, 16))
        elif key == "eps":
            out[key] = _eps(value, where)
        elif key == "clean_acc":
            out[key] = None if value is None else _number(value, where, 0.0, 1.0)
        elif key == "additional_data":
            if not isinstance(value, bool):
                raise HarnessError(f"{where} must be true or false", _METADATA_FIX)
            out[key] = value
        elif key == "number_forward_passes":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**6:
                raise HarnessError(f"{where} must be a positive integer", _METADATA_FIX)
            out[key] = value
        elif key == "training":
            out[key] = _training(value)
        elif key in _TEXT_LIMITS:
            out[key] = None if value is None else text(value, where, _TEXT_LIMITS[key])
        else:
            extra += 1
            if not isinstance(key, str) or not _EXTRA_KEY.fullmatch(key) or extra > _MAX_EXTRA_KEYS:
                raise HarnessError(
                    f"METADATA key {terminal(key, 40)!r} is not allowed (unknown keys: at most {_MAX_EXTRA_KEYS}, "
                    "identifiers of up to 64 characters)",
                    _METADATA_FIX,
                )
            out[key] = _scalar(value, where, 500)
    return out


def _training(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 64:
        raise HarnessError("METADATA training must be a dict of at most 64 entries", _METADATA_FIX)
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _EXTRA_KEY.fullmatch(key):
            raise HarnessError(f"METADATA training key {terminal(key, 40)!r} is not an identifier", _METADATA_FIX)
        out[key] = _scalar(item, f"METADATA training {key}", 1000)
    method = out.get("method")
    if method is not None and (not isinstance(method, str) or not TRAINING_METHOD.fullmatch(method)):
        raise HarnessError(
            f"METADATA training method {terminal(method, 40)!r} is not a short name such as standard or pgd-at",
            _METADATA_FIX,
        )
    return out


def _eps(value: Any, where: str) -> float | str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise HarnessError(f"{where} must be a number or text such as 8/255", _METADATA_FIX)
    if isinstance(value, str):
        text(value, where, 32)
    eps, _ = parse_eps(value)
    if not math.isfinite(eps) or eps <= 0:
        raise HarnessError(f"{where} {value!r} is not a positive number", _METADATA_FIX)
    return value


def _scalar(value: Any, where: str, limit: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return _number(value, where, -1e300, 1e300)
    if isinstance(value, str):
        return text(value, where, limit)
    raise HarnessError(f"{where} must be text, a number, true/false or null", _METADATA_FIX)


def text(value: Any, where: str, limit: int, *, required: bool = False, fix: str = _METADATA_FIX) -> str:
    """``value`` if it is text of at most ``limit`` characters without control characters, else a HarnessError
    naming ``where``."""
    try:
        return schema.text(value, where, limit, required=required)
    except schema.SchemaError as exc:
        raise HarnessError(str(exc), fix) from None


def _number(value: Any, where: str, low: float, high: float, fix: str = _METADATA_FIX) -> float:
    try:
        return schema.number(value, where, low, high)
    except schema.SchemaError as exc:
        raise HarnessError(str(exc), fix) from None
