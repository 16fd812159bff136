"""Run configuration: what the user asked for (:class:`RunConfig`) and what determines the numbers
(:class:`ResolvedConfig` for robustness, :class:`~metrics.suite.SuiteConfig` for interpretability)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from harness.attack import parse_attack
from harness.data import get_dataset
from harness.errors import HarnessError
from harness.storage import DEFAULT_DB
from harness.threat import check_eps, parse_eps, parse_threat_model
from metrics.attribution import METHODS
from metrics.featurevis.pipeline import FeatureVisConfig
from metrics.registry import METRICS
from metrics.suite import DEFAULT_METHOD_OPTIONS, DEFAULT_METHODS, DEFAULT_METRICS, SuiteConfig


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
    batch_size: int = 250
    device: str = "auto"
    data_dir: Path | None = None
    db: str = DEFAULT_DB
    fresh: bool = False
    progress: bool = True
    metrics: str = "default"
    methods: str = "default"
    n_explain: int = 100
    explain_target: str = "label"
    method_options: tuple[str, ...] = ()
    trusted: bool = False
    stall_timeout: float = 600.0
    timeout: float | None = None
    memory_limit: str = "auto"
    cpu_limit: int | None = None
    robustbench: str | None = None
    model_dir: Path | None = None
    featurevis: bool | None = None  # None: with the default or full interpretability suite only
    featurevis_options: tuple[str, ...] = ()

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
    batch_size: int

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()


def check_options(config: RunConfig) -> None:
    """Everything that can be checked before the submission is imported (fails fast, touches nothing)."""
    if (config.model is None) == (config.robustbench is None):
        raise HarnessError("give exactly one of --model FILE and --robustbench MODEL_ID",
                           "e.g. --model submissions/foo.py")  # fmt: skip
    if config.robustbench is not None and config.dataset is None:
        raise HarnessError("--robustbench needs --dataset", "e.g. --dataset cifar10 --threat-model Linf")
    if config.eps is not None:
        parse_eps(config.eps)
    if config.dataset is not None:
        get_dataset(config.dataset)
    if config.threat_model is not None:
        parse_threat_model(config.threat_model)
    parse_attack(config.attack)
    if config.n_examples < 1:
        raise HarnessError(f"--n-examples {config.n_examples} must be positive", "use e.g. 1000")
    if config.batch_size < 1:
        raise HarnessError(f"--batch-size {config.batch_size} must be positive", "use e.g. 250")
    if config.stall_timeout <= 0 or (config.timeout is not None and config.timeout <= 0):
        raise HarnessError("timeouts must be positive", "e.g. --stall-timeout 600")
    resolve_suite(config)
    resolve_featurevis(config)


def resolve_config(config: RunConfig, metadata: dict[str, Any]) -> ResolvedConfig:
    """Fill defaults from the submission's METADATA, then from the data set's standard threat model."""
    dataset = config.dataset or str(metadata["dataset"])
    info = get_dataset(dataset)
    if config.dataset and metadata.get("dataset") and config.dataset != metadata["dataset"]:
        raise HarnessError(
            f"the submission is for {metadata['dataset']}, not {config.dataset}", "drop --dataset or fix METADATA"
        )
    threat_model = parse_threat_model(config.threat_model or metadata.get("threat_model") or info.default_threat_model)
    if config.eps is not None:
        eps_raw = config.eps
    elif metadata.get("eps") is not None and metadata.get("threat_model", threat_model) == threat_model:
        eps_raw = str(metadata["eps"])
    else:
        eps_raw = info.default_eps[threat_model]
    eps, eps_text = parse_eps(eps_raw)
    check_eps(threat_model, eps, info.input_numel)
    return ResolvedConfig(
        dataset=dataset,
        threat_model=threat_model,
        eps=eps,
        eps_text=eps_text,
        n_examples=config.n_examples,
        attack=config.attack.strip().lower(),
        seed=config.seed,
        batch_size=config.batch_size,
    )


def resolve_suite(config: RunConfig) -> SuiteConfig | None:
    """The interpretability suite asked for (``--metrics none`` gives None)."""
    metrics = _names(config.metrics, DEFAULT_METRICS, METRICS)
    methods = _names(config.methods, DEFAULT_METHODS, METHODS)
    if not metrics or not methods:
        return None
    if config.n_explain < 1:
        raise HarnessError(f"--n-explain {config.n_explain} must be positive", "use e.g. 100")
    if config.explain_target not in ("label", "predicted"):
        raise HarnessError(f"--explain-target {config.explain_target!r} is unknown", "use label or predicted")
    suite = SuiteConfig(methods=methods, metrics=metrics, n_explain=min(config.n_explain, config.n_examples),
                        target=config.explain_target, seed=config.seed,
                        method_options=_method_options(config.method_options))  # fmt: skip
    try:
        suite.validate()
    except ValueError as exc:
        raise HarnessError(str(exc), "see `robint-bench list` and README, Interpretability") from None
    return suite


def resolve_featurevis(config: RunConfig) -> FeatureVisConfig | None:
    """The feature visualisation asked for: on with ``--featurevis``, off with ``--no-featurevis``; by default
    on exactly when the interpretability suite is the default or ``all`` (an explicit metric list, as in quick
    runs and tests, leaves it out). Options are ``--featurevis-option KEY=VALUE`` (FeatureVisConfig fields)."""
    on = config.featurevis
    if on is None:
        on = config.metrics.strip().lower() in ("default", "all")
    if not on or config.n_examples < 2:
        return None
    values: dict[str, Any] = {"seed": config.seed, "n_inversion": min(FeatureVisConfig.n_inversion, config.n_examples)}
    accepted = {f.name for f in fields(FeatureVisConfig)}
    for text in config.featurevis_options:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or key not in accepted or key in ("seed", "batch_size"):
            options = ", ".join(sorted(accepted - {"seed", "batch_size"}))
            raise HarnessError(f"--featurevis-option {text!r} is not KEY=VALUE with a known key",
                               f"keys: {options}")  # fmt: skip
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            raise HarnessError(f"--featurevis-option {text!r} has a non-numeric value", "e.g. inversion_steps=1000") \
                from None  # fmt: skip
    fv = FeatureVisConfig(**values)
    try:
        fv.validate()
    except ValueError as exc:
        raise HarnessError(str(exc), "see README, Feature visualisation") from None
    return fv


def suite_settings(suite: SuiteConfig) -> dict[str, Any]:
    """The suite settings that change its numbers (method and metric lists excluded), in their JSON form."""
    settings = asdict(suite)
    for key in ("methods", "metrics", "batch_size"):
        settings.pop(key)
    return json.loads(json.dumps(settings))


def suite_from_json(data: dict[str, Any]) -> SuiteConfig:
    """Inverse of ``asdict(suite)`` after a JSON round trip."""
    data = dict(data)
    data["methods"], data["metrics"] = tuple(data["methods"]), tuple(data["metrics"])
    data["method_options"] = tuple(tuple(row) for row in data["method_options"])
    return SuiteConfig(**data)


def _names(spec: str, default: tuple[str, ...], registry) -> tuple[str, ...]:
    spec = spec.strip().lower()
    if spec == "none":
        return ()
    if spec == "default":
        return default
    if spec == "all":
        return tuple(registry)
    names = tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    for name in names:
        registry.get(name)
    return names


def _method_options(given: tuple[str, ...]) -> tuple[tuple[str, str, Any], ...]:
    """Suite defaults overridden by ``METHOD.KEY=VALUE`` strings (values parsed as JSON when they can be)."""
    options = {(m, k): v for m, k, v in DEFAULT_METHOD_OPTIONS}
    for text in given:
        head, sep, raw = text.partition("=")
        method, dot, key = head.strip().partition(".")
        if not sep or not dot or not key:
            raise HarnessError(f"--method-option {text!r} is malformed",
                               "use METHOD.KEY=VALUE, e.g. integrated_gradients.n_steps=50")  # fmt: skip
        METHODS.get(method)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options[(method, key)] = value
    return tuple((m, k, v) for (m, k), v in sorted(options.items()))
