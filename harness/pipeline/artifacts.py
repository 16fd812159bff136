"""Intermediate arrays of a running run (attributions, adversarial examples, visualisations) as npz bytes."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

FIGURE_ROWS = 6  # examples shown in a run's attribution, adversarial and inversion figures


def pack(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items() if v is not None})
    return buffer.getvalue()


def unpack_all(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {key: f[key] for key in f.files}


def unpack_attributions(data: bytes) -> dict[str, np.ndarray | None]:
    with np.load(io.BytesIO(data), allow_pickle=False) as f:
        return {"main": f["main"], "grid": f["grid"] if "grid" in f.files else None}
