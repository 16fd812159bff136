"""Argument and path checks the commands make before anything heavy is imported (torch, the data sets, the metric
registries): a mistyped path or a bad number is one error line within a second, not after the imports.

Only checks that need nothing but the standard library and the harness's light modules live here; the rest
(data set, attack and metric names, the device) are checked once by harness.pipeline.resolve, before any worker
starts."""

from __future__ import annotations

from pathlib import Path

from harness.core.config import parse_batch_size, parse_timeout
from harness.core.errors import HarnessError
from harness.core.presets import check_preset
from harness.core.threat import parse_eps, parse_threat_model

__all__ = ["check_run_options", "existing_dir", "submission_file"]


def submission_file(path: Path, option: str = "--model") -> Path:
    """``path`` when it is an existing ``.py`` file, else one error naming it."""
    if not path.is_file() or path.suffix != ".py":
        what = "does not exist" if not path.exists() else "is not a .py file"
        raise HarnessError(
            f"{option} {path} {what}", "pass the submission's .py file (defining load_model() and METADATA)"
        )
    return path


def existing_dir(path: Path, option: str, fix: str) -> Path:
    """``path`` when it is an existing directory, else one error naming ``option`` and ``fix``."""
    if not path.is_dir():
        raise HarnessError(f"{option} {path} {'is not a directory' if path.exists() else 'does not exist'}", fix)
    return path


def positive(option: str, value: int | float | None, example: str) -> None:
    """A count or a number of seconds that must be positive (None: not given)."""
    if value is not None and not value > 0:
        raise HarnessError(f"{option} {value} must be positive", f"use e.g. {option} {example}")


def check_run_options(options: dict) -> dict:
    """``run``'s options with the light ones checked and parsed (timeout, batch size): the model and data paths,
    the counts, eps and threat model syntax, the preset. Returns the options as RunConfig takes them."""
    if options.get("model") is not None:
        submission_file(options["model"])
    data_dir = options.get("data_dir")
    if data_dir is not None and data_dir.exists() and not data_dir.is_dir():  # a new one is made (and filled)
        raise HarnessError(f"--data-dir {data_dir} is a file, not a directory", "pass the data directory")
    for option, key, example in (
        ("--n-examples", "n_examples", "1000"),
        ("--n-explain", "n_explain", "100"),
        ("--n-sanity", "n_sanity", "16"),
        ("--n-composites", "n_composites", "16"),
        ("--chunk-size", "chunk_size", "250"),
        ("--stall-timeout", "stall_timeout", "600"),
        ("--cpu-limit", "cpu_limit", "3600"),
    ):
        positive(option, options.get(key), example)
    if options.get("eps") is not None:
        parse_eps(options["eps"])
    if options.get("threat_model") is not None:
        parse_threat_model(options["threat_model"])
    if "preset" in options:
        check_preset(options["preset"])
    out = dict(options)
    out["timeout"] = parse_timeout(options.get("timeout"))
    out["batch_size"] = parse_batch_size(options["batch_size"])
    return out
