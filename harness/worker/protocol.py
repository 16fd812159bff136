"""Messages between the parent (which owns the database) and an evaluation worker: one JSON object per line.

Tensors travel as ``{"__array__": base64 .npy}`` and are read back with ``allow_pickle=False``: the parent never
unpickles anything a submission could have produced. :func:`decode` turns anything else (bad JSON, nesting deeper
than :data:`MAX_DEPTH`, a malformed array) into one ``ValueError``; the parent also caps the length of a line
before it is decoded (harness.worker.channel), and checks each message against the request in flight
(:data:`REPLIES`, then the schemas of harness.pipeline.validate).

What a worker is told about its run is narrow and typed: :class:`WorkerConfig` in the ``load`` request (where the
model comes from, the device, progress) and, for the worker that attacks, :class:`WorkerRun` in the ``check``
request (the data set's name and the attack the parent resolved). A worker reads no data: the images it needs come
in ``images`` requests (:class:`ImagesRequest`: the run's test images, the explainers' background, the training
split for feature visualisation). Nothing else of the run reaches a worker: not the data directory, the database
URL, the sweep, other runs' paths, timeouts or limits (the parent enforces those). Requests and the replies the
parent reads are TypedDicts below (its ``op`` names each; tests/harness/worker/test_protocol.py checks that each
op has one).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import IO, Any, Literal, NotRequired, TypedDict

from harness.core.schema import (  # the deepest legitimate message (feature visualisations) nests 5 levels
    MAX_DEPTH,
    depth,
)

TERMINAL = frozenset(
    {
        "loaded",
        "stored",
        "checked",
        "fitted",
        "attacked",
        "explained",
        "visualised",
        "classified",
        "signed",
        "error",
        "bye",
    }
)
ALWAYS = frozenset({"heartbeat", "error"})
# what a worker may answer to each request: its terminal reply, the progress messages before it, and ALWAYS
REPLIES: dict[str, frozenset[str]] = {
    "load": frozenset({"loaded"}),
    "images": frozenset({"stored"}),
    "check": frozenset({"checked"}),
    "fit": frozenset({"fitted"}),
    "attack": frozenset({"chunk", "attacked"}),
    "explain": frozenset({"attributions", "score", "explained"}),
    "visualise": frozenset({"visualised"}),
    "classify": frozenset({"classified"}),
    "signs": frozenset({"signed"}),
    "exit": frozenset({"bye"}),
}


# --- what a worker is told ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRef:
    """Where a worker loads the model from: a submission file (``submission``), or a RobustBench zoo model (its id,
    the zoo's data set and threat model, and the directory holding its checkpoint)."""

    submission: str | None = None
    robustbench: str | None = None
    dataset: str | None = None
    threat_model: str | None = None
    model_dir: str | None = None


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker is told when it loads the model (the ``load`` request); see the module doc."""

    model: ModelRef
    device: str  # auto, cpu, cuda, cuda:N (the worker resolves auto on its own machine)
    progress: bool  # progress bars on the worker's stderr

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerConfig:
        return cls(ModelRef(**data["model"]), str(data["device"]), bool(data["progress"]))


@dataclass(frozen=True)
class WorkerRun:
    """What the attacking worker evaluates (the ``check`` request), resolved by the parent from the METADATA the
    worker reported: the first ``n_examples`` test images of ``dataset`` (sent by the parent before: an ``images``
    request), attacked with ``attack`` (harness.attack.registry) in ``threat_model`` at ``eps``, in chunks of
    ``chunk`` images, seeded with ``seed``. A fresh worker that only re-classifies never receives one."""

    dataset: str
    n_examples: int
    threat_model: str
    eps: float
    attack: str
    seed: int
    chunk: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerRun:
        return cls(**data)


# --- requests and the replies the parent reads -------------------------------------------------------------------


class LoadRequest(TypedDict):
    op: Literal["load"]
    config: dict[str, Any]  # WorkerConfig.to_json()


class ImagesRequest(TypedDict):
    """A block of images the parent sends a worker (which reads no data itself): ``split`` ``test`` (the run's first
    n test images), ``background`` (the explainers' training images) or ``train`` (the training split, for feature
    visualisation); the block holds images ``start`` to ``start + len(x)`` of ``total``, as :func:`pack_images`
    wrote them (``scale``), with their labels ``y`` ``(b,)`` int64. A block starting at 0 replaces the split."""

    op: Literal["images"]
    split: Literal["test", "background", "train"]
    start: int
    total: int
    x: Any  # (b, C, H, W) uint8 (scale 255) or float32 (scale 1)
    y: Any
    scale: int


class CheckRequest(TypedDict):
    op: Literal["check"]
    run: dict[str, Any]  # WorkerRun.to_json()


class AttackRequest(TypedDict):
    op: Literal["attack"]
    chunks: list[tuple[int, int]]  # [start, end) of each chunk to attack


class FitRequest(TypedDict):
    """``--batch-size auto``: the largest batches that fit, up to ``attack`` images for the attack's step and, with
    a suite, up to ``explain`` for its attribution methods (harness.pipeline.batching)."""

    op: Literal["fit"]
    attack: int
    suite: NotRequired[dict[str, Any]]  # asdict(SuiteConfig)
    explain: NotRequired[int]


class ExplainRequest(TypedDict):
    op: Literal["explain"]
    suite: dict[str, Any]  # asdict(SuiteConfig)
    clean_pred: Any  # (n,) int64 array
    done: list[list[str]]  # (method, metric) pairs stored already
    cached: dict[str, dict[str, Any]]  # method -> {"main": (n, C, H, W), "grid": array or None}


class VisualiseRequest(TypedDict):
    op: Literal["visualise"]
    config: dict[str, Any]  # asdict(FeatureVisConfig)


class PointsRequest(TypedDict):
    """``classify`` (logits) or ``signs`` (input-gradient signs) of the points ``x`` ``(n, C, H, W)``."""

    op: Literal["classify", "signs"]
    x: Any
    batch_size: int


class ExitRequest(TypedDict):
    op: Literal["exit"]


class SandboxMessage(TypedDict):
    """The worker's first line, before any request: what its sandbox could enforce (harness.worker.sandbox)."""

    op: Literal["sandbox"]
    report: dict[str, Any]  # asdict(SandboxReport)


class HeartbeatMessage(TypedDict):
    op: Literal["heartbeat"]


class Loaded(TypedDict):
    op: Literal["loaded"]
    metadata: dict[str, Any]


class Checked(TypedDict):
    op: Literal["checked"]
    flags: list[str]
    device: str
    probe: dict[str, float]


class ChunkMessage(TypedDict):
    op: Literal["chunk"]
    start: int
    end: int
    clean_pred: Any  # (b,) int64
    x_adv: Any  # (b, C, H, W) float32
    adv_pred: Any  # (b,) int64
    accuracy_after: dict[str, float]  # AutoAttack's log: "clean" and the run's sub-attacks
    warnings: list[str]


class Attacked(TypedDict):
    op: Literal["attacked"]


class FitResult(TypedDict):
    """harness.core.memory.largest_batch's answer: the largest batch that fits, and the larger ones that did not."""

    batch: int
    failed: list[int]


class Fitted(TypedDict):
    op: Literal["fitted"]
    attack: FitResult
    explain: NotRequired[FitResult]  # with a suite only


class AttributionsMessage(TypedDict):
    op: Literal["attributions"]
    method: str
    main: Any  # (n, C, H, W) float32
    grid: Any  # (rows, C, H', W') float32 on the GridPG composites, or None


class ScoreMessage(TypedDict):
    op: Literal["score"]
    method: str
    metric: str
    values: Any
    details: dict[str, Any]


class Explained(TypedDict):
    op: Literal["explained"]


class Visualised(TypedDict):
    """metrics.featurevis.pipeline.visualise's output, its two parts at the top level."""

    op: Literal["visualised"]
    inversion: dict[str, Any]
    generation: dict[str, Any]


class Classified(TypedDict):
    op: Literal["classified"]
    logits: Any  # (n, K) float32


class Signed(TypedDict):
    op: Literal["signed"]
    signs: Any  # (n, C, H, W) input-gradient signs


class Stored(TypedDict):
    """A block of :class:`ImagesRequest` kept."""

    op: Literal["stored"]


class Bye(TypedDict):
    op: Literal["bye"]


class ErrorMessage(TypedDict):
    op: Literal["error"]
    problem: str
    fix: str


def load_request(config: WorkerConfig) -> LoadRequest:
    return {"op": "load", "config": config.to_json()}


def check_request(run: WorkerRun) -> CheckRequest:
    return {"op": "check", "run": run.to_json()}


def pack_images(x: Any) -> tuple[Any, int]:
    """Images in [0, 1] as they travel: uint8 steps of 1/255 (``scale`` 255) when that is exact (the 8-bit data
    sets: :func:`unpack_images` gives back the same float32 bits), else float32 (``scale`` 1).

    >>> import numpy as np
    >>> x = np.arange(256, dtype=np.uint8).astype(np.float32) / np.float32(255)
    >>> packed, scale = pack_images(x)
    >>> packed.dtype.name, scale, bool((unpack_images(packed, scale) == x).all())
    ('uint8', 255, True)
    """
    import numpy as np

    x = np.ascontiguousarray(x, dtype=np.float32)
    steps = np.rint(x.astype(np.float64) * 255)
    if np.all((steps >= 0) & (steps <= 255)):
        packed = steps.astype(np.uint8)
        if np.array_equal(unpack_images(packed, 255), x):
            return packed, 255
    return x, 1


def unpack_images(x: Any, scale: int) -> Any:
    """The float32 images of :func:`pack_images`' output (uint8 / 255 in float32, as the data loaders compute them).

    Raises:
        ValueError: an unknown ``scale`` or dtype.
    """
    import numpy as np

    if scale == 255 and x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255.0)
    if scale == 1 and x.dtype == np.float32:
        return x
    raise ValueError(f"images of dtype {x.dtype} with scale {scale!r}")


def encode(message: Mapping[str, Any]) -> str:
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


def write(stream: IO[str], message: Mapping[str, Any]) -> None:
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
