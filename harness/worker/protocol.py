"""Messages between the parent (which owns the database) and an evaluation worker: one JSON object per line.

Tensors travel as ``{"__array__": base64 .npy}`` and are read back with ``allow_pickle=False``: the parent never
unpickles anything a submission could have produced. :func:`decode` turns anything else (bad JSON, nesting deeper
than :data:`MAX_DEPTH`, a malformed array) into one ``ValueError``; the parent also caps the length of a line
before it is decoded (harness.worker.channel), and checks each message against the request in flight
(:data:`REPLIES`, then the schemas of harness.pipeline.validate).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from typing import IO, Any

TERMINAL = frozenset(
    {"loaded", "checked", "fitted", "attacked", "explained", "visualised", "classified", "signed", "error", "bye"}
)
ALWAYS = frozenset({"heartbeat", "error"})
# what a worker may answer to each request: its terminal reply, the progress messages before it, and ALWAYS
REPLIES: dict[str, frozenset[str]] = {
    "load": frozenset({"loaded"}),
    "check": frozenset({"checked"}),
    "fit": frozenset({"fitted"}),
    "attack": frozenset({"chunk", "attacked"}),
    "explain": frozenset({"attributions", "score", "explained"}),
    "visualise": frozenset({"visualised"}),
    "classify": frozenset({"classified"}),
    "signs": frozenset({"signed"}),
    "exit": frozenset({"bye"}),
}
MAX_DEPTH = 12  # the deepest legitimate message (feature visualisations) nests 5 levels


def encode(message: dict[str, Any]) -> str:
    """One line of JSON (arrays and tensors encoded as .npy)."""
    return json.dumps(message, default=_default, separators=(",", ":"))


def decode(line: str | bytes) -> dict[str, Any]:
    """The message of one line; raises ValueError on anything that is not a protocol message."""
    try:
        message = json.loads(line, object_hook=_object_hook)
    except (ValueError, RecursionError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a protocol message ({type(exc).__name__})") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ValueError("not a protocol message (no op)")
    if depth(message) > MAX_DEPTH:
        raise ValueError(f"not a protocol message (nested deeper than {MAX_DEPTH} levels)")
    return message


def depth(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (iteratively: no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:
            stack.extend((child, level + 1) for child in item)
    return deepest


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

        try:
            return np.load(io.BytesIO(base64.b64decode(obj["__array__"], validate=True)), allow_pickle=False)
        except (binascii.Error, TypeError, ValueError, OSError, EOFError) as exc:
            raise ValueError(f"malformed array ({type(exc).__name__})") from None
    return obj
