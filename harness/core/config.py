"""Run configuration as data: what the user asked for (:class:`RunConfig`) and what determines a run's robustness
numbers (:class:`ResolvedConfig`). Resolution from METADATA and data-set defaults lives in harness.pipeline.resolve;
this module imports nothing heavy, so the CLI can take its defaults from here and ``--help`` stays fast."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

AUTO = "auto"  # --batch-size auto (harness.pipeline.batching)
DEFAULT_DB = "sqlite:///results/robint.db"


@dataclass
class RunConfig:
    """What the user asked for; ``None`` means "the default from the submission or the data set"."""

    model: Path | None = None
    dataset: str | None = None
    n_examples: int = 1000
    threat_model: str | None = None
    eps: str | None = None
    attack: str = "standard"
    seed: int = 0
    batch_size: int | str = 250  # a number, or "auto": fit the device (harness.pipeline.batching)
    device: str = "auto"
    data_dir: Path | None = None
    db: str = DEFAULT_DB
    fresh: bool = False
    progress: bool = True
    metrics: str = "default"
    methods: str = "default"
    n_explain: int = 100
    n_sanity: int = 16  # images of the randomisation (sanity) metrics
    n_composites: int = 16  # GridPG composites scored
    explain_target: str = "label"
    explain_output: str = "logit"
    rescore: bool = False
    reliability: bool = False
    method_options: tuple[str, ...] = ()
    trusted: bool = False
    stall_timeout: float = 600.0
    timeout: float | None = None  # None: derived from the run's size (harness.pipeline.budgets); inf: no limit
    memory_limit: str = "auto"
    cpu_limit: int | None = None
    process_limit: str = "auto"  # processes and threads per worker: auto, none, or a number (README, Security model)
    robustbench: str | None = None
    model_dir: Path | None = None
    featurevis: bool | None = None  # None: with the default or full interpretability suite only
    featurevis_options: tuple[str, ...] = ()
    chunk_size: int | None = None  # the attack chunk, which fixes the numbers (None: batch_size, or 250 with auto)
    sweep: dict[str, str] | None = None  # {"id", "entry", "key"} when the run is a sweep's job (robint-bench sweep)
    preset: str = "default"  # quick, default, full: the defaults of the settings above (harness.core.presets)

    def to_json(self) -> dict[str, Any]:
        return {f.name: (str(v) if isinstance(v := getattr(self, f.name), Path) else v) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunConfig:
        config = cls(**data)
        config.model = Path(config.model) if config.model else None
        config.data_dir = Path(config.data_dir) if config.data_dir else None
        config.model_dir = Path(config.model_dir) if config.model_dir else None
        config.method_options = tuple(config.method_options)
        config.featurevis_options = tuple(config.featurevis_options)
        return config


@dataclass(frozen=True)
class ResolvedConfig:
    """The settings that determine a run's robustness numbers; their hash identifies identical runs."""

    dataset: str
    threat_model: str
    eps: float
    eps_text: str
    n_examples: int
    attack: str
    seed: int
    batch_size: int  # the attack chunk (harness.pipeline.batching.chunk_size): it fixes the numbers

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


# --- options parsed before anything heavy is imported -------------------------------------------------------


def parse_batch_size(text: str | int) -> int | str:
    """``auto`` or a positive number (as the CLI passes it).

    >>> parse_batch_size("auto"), parse_batch_size("64"), parse_batch_size(8)
    ('auto', 64, 8)
    """
    if isinstance(text, int):
        return text
    value = str(text).strip().lower()
    if value == AUTO:
        return AUTO
    try:
        return int(value)
    except ValueError:
        raise HarnessError(f"--batch-size {text!r} is neither a number nor auto", "use e.g. 250, or auto") from None


def check_batch_sizes(batch_size: int | str, chunk: int | None) -> None:
    """``--batch-size`` is ``auto`` or positive; ``--chunk-size`` (``chunk``), when given, is positive."""
    if batch_size != AUTO and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise HarnessError(f"--batch-size {batch_size} must be positive or auto", "use e.g. 250, or auto")
    if chunk is not None and chunk < 1:
        raise HarnessError(f"--chunk-size {chunk} must be positive", "use e.g. 250")


def parse_timeout(text: str | float | None) -> float | None:
    """``--timeout``: None (the default derived from the run's size), ``none`` (no limit: ``inf``) or seconds.

    >>> parse_timeout(None), parse_timeout("none"), parse_timeout("90")
    (None, inf, 90.0)
    """
    if text is None:
        return None
    if isinstance(text, str) and text.strip().lower() in ("none", "inf", "off"):
        return math.inf
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise HarnessError(f"--timeout {text!r} is not a positive number of seconds", "e.g. --timeout 3600, or none")
    return seconds
