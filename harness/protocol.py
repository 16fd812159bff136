"""Messages between the parent (which owns the database) and an evaluation worker: one JSON object per line.

Tensors travel as ``{"__array__": base64 .npy}`` and are read back with ``allow_pickle=False``: the parent never
unpickles anything a submission could have produced.
"""

from __future__ import annotations

import base64
import io
import json
from typing import IO, Any

TERMINAL = frozenset({"loaded", "checked", "attacked", "explained", "visualised", "error", "bye"})


def encode(message: dict[str, Any]) -> str:
    """One line of JSON (arrays and tensors encoded as .npy)."""
    return json.dumps(message, default=_default, separators=(",", ":"))


def decode(line: str) -> dict[str, Any]:
    """The message of one line; raises ValueError on anything that is not a protocol message."""
    message = json.loads(line, object_hook=_object_hook)
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ValueError("not a protocol message")
    return message


def write(stream: IO[str], message: dict[str, Any]) -> None:
    stream.write(encode(message) + "\n")
    stream.flush()


def _default(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        buffer = io.BytesIO()
        np.save(buffer, value, allow_pickle=False)
        return {"__array__": base64.b64encode(buffer.getvalue()).decode("ascii")}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def _object_hook(obj: dict[str, Any]) -> Any:
    if set(obj) == {"__array__"}:
        import numpy as np

        return np.load(io.BytesIO(base64.b64decode(obj["__array__"])), allow_pickle=False)
    return obj
