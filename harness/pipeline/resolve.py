"""Resolving a run's configuration: option checks before anything is imported, then the defaults from the
submission's METADATA and the data set's standard threat model, the interpretability suite and the feature
visualisation asked for. The parent resolves; the worker receives the result and cannot change it."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any

import torch

from harness.attack.autoattack import parse_attack
from harness.config import ResolvedConfig, RunConfig
from harness.data import ensure_split, get_dataset
from harness.errors import HarnessError
from harness.pipeline.batching import check_batch_sizes, chunk_size
from harness.threat import check_eps, parse_eps, parse_threat_model
from metrics._registry import UnknownNameError
from metrics.attribution import METHODS
from metrics.featurevis.pipeline import FeatureVisConfig
from metrics.registry import METRICS, attribution_metrics
from metrics.suite import DEFAULT_METHOD_OPTIONS, DEFAULT_METHODS, DEFAULT_METRICS, SuiteConfig


def check_options(config: RunConfig) -> None:
    """Everything that can be checked before the submission is imported (fails fast, touches nothing)."""
    if (config.model is None) == (config.robustbench is None):
        raise HarnessError(
            "give exactly one of --model FILE and --robustbench MODEL_ID", "e.g. --model submissions/foo.py"
        )
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
    check_batch_sizes(config)
    if config.stall_timeout <= 0 or (config.timeout is not None and config.timeout <= 0):
        raise HarnessError("timeouts must be positive", "e.g. --stall-timeout 600")
    check_device(config.device)
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
    check_training_split(config, dataset)
    return ResolvedConfig(
        dataset=dataset,
        threat_model=threat_model,
        eps=eps,
        eps_text=eps_text,
        n_examples=config.n_examples,
        attack=config.attack.strip().lower(),
        seed=config.seed,
        batch_size=chunk_size(config),
    )


def check_device(name: str) -> None:
    """Refuse, in the parent and before any worker starts, a device this machine does not have."""
    text = name.strip().lower()
    if text in ("auto", "cpu"):
        return
    try:
        device = torch.device(text)
    except RuntimeError:
        raise HarnessError(f"--device {name!r} is not a device", "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise HarnessError(
                f"--device {name} was asked for, but this machine has no usable CUDA GPU "
                "(torch.cuda.is_available() is False; the submission is not at fault)",
                "use --device cpu (or auto), or run on a machine with a GPU and a CUDA build of torch",
            )
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise HarnessError(
                f"--device {name}: this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
                f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''})",
                "pass one of them, or --device cuda",
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise HarnessError(f"--device {name} was asked for, but MPS is not available here", "use --device cpu")


def training_split_users(config: RunConfig) -> list[str]:
    """What in this run reads the training split: attribution methods with a training-image background
    (expected_gradients, gradient_shap) and the feature visualisation's class generation."""
    suite = resolve_suite(config)
    users = [] if suite is None else [m for m in suite.methods if METHODS.get(m).needs_background]
    if resolve_featurevis(config) is not None:
        users.append("feature visualisation")
    return users


def check_training_split(config: RunConfig, dataset: str) -> None:
    """Before the attack: the training split is there when the run will need it (else one clear error saying what
    needs it and how to run without it), instead of a failure after the attack."""
    users = training_split_users(config)
    if not users:
        return
    try:
        ensure_split(dataset, "train", data_dir=config.data_dir)
    except HarnessError as exc:
        suite = resolve_suite(config)
        others = [m for m in (suite.methods if suite else ()) if m not in users] or ["integrated_gradients", "saliency"]
        without = f"--methods {','.join(others)}" + (" --no-featurevis" if "feature visualisation" in users else "")
        raise HarnessError(
            f"{' and '.join(users)} need{'s' if len(users) == 1 else ''} training images of {dataset}, and its "
            f"training split is not available: {exc.problem}",
            f"{exc.fix}; or run without them: {without}",
        ) from None


def resolve_suite(config: RunConfig) -> SuiteConfig | None:
    """The interpretability suite asked for (``--metrics none`` gives None)."""
    metrics = _names(config.metrics, DEFAULT_METRICS, METRICS, every=attribution_metrics())
    methods = _names(config.methods, DEFAULT_METHODS, METHODS)
    if not metrics or not methods:
        return None
    for option, value, example in (
        ("--n-explain", config.n_explain, 100),
        ("--n-sanity", config.n_sanity, 16),
        ("--n-composites", config.n_composites, 16),
    ):
        if value < 1:
            raise HarnessError(f"{option} {value} must be positive", f"use e.g. {example}")
    if config.explain_target not in ("label", "predicted"):
        raise HarnessError(f"--explain-target {config.explain_target!r} is unknown", "use label or predicted")
    if config.explain_output not in ("logit", "probability"):
        raise HarnessError(f"--explain-output {config.explain_output!r} is unknown", "use logit or probability")
    suite = SuiteConfig(
        methods=methods,
        metrics=metrics,
        n_explain=min(config.n_explain, config.n_examples),
        n_sanity=config.n_sanity,
        n_composites=config.n_composites,
        target=config.explain_target,
        seed=config.seed,
        method_options=_method_options(config.method_options),
        output=config.explain_output,
        reliability=config.reliability,
    )
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
            raise HarnessError(f"--featurevis-option {text!r} is not KEY=VALUE with a known key", f"keys: {options}")
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            raise HarnessError(
                f"--featurevis-option {text!r} has a non-numeric value", "e.g. inversion_steps=1000"
            ) from None
    fv = FeatureVisConfig(**values)
    try:
        fv.validate()
    except ValueError as exc:
        raise HarnessError(str(exc), "see README, Feature visualisation") from None
    return fv


def suite_settings(suite: SuiteConfig) -> dict[str, Any]:
    """The suite settings that change its numbers (method and metric lists excluded), in their JSON form."""
    settings = asdict(suite)
    for key in ("methods", "metrics", "controls", "reliability", "bounds", "batch_size"):
        settings.pop(key)
    return json.loads(json.dumps(settings))


def _names(spec: str, default: tuple[str, ...], registry, every: list[str] | None = None) -> tuple[str, ...]:
    """``none``, ``default``, ``all`` (``every``, or the whole registry) or a comma list of names from ``registry``
    (an entry outside ``every`` is refused like an unknown one)."""
    spec = spec.strip().lower()
    if spec == "none":
        return ()
    if spec == "default":
        return default
    allowed = list(registry) if every is None else every
    if spec == "all":
        return tuple(allowed)
    names = tuple(dict.fromkeys(n.strip() for n in spec.split(",") if n.strip()))
    for name in names:
        _lookup(registry, name)
        if name not in allowed:
            raise HarnessError(f"{name} is not computed per attribution method", f"choose from: {', '.join(allowed)}")
    return names


def _method_options(given: tuple[str, ...]) -> tuple[tuple[str, str, Any], ...]:
    """Suite defaults overridden by ``METHOD.KEY=VALUE`` strings (values parsed as JSON when they can be)."""
    options = {(m, k): v for m, k, v in DEFAULT_METHOD_OPTIONS}
    for text in given:
        head, sep, raw = text.partition("=")
        method, dot, key = head.strip().partition(".")
        if not sep or not dot or not key:
            raise HarnessError(
                f"--method-option {text!r} is malformed", "use METHOD.KEY=VALUE, e.g. integrated_gradients.n_steps=50"
            )
        _lookup(METHODS, method)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options[(method, key)] = value
    return tuple((m, k, v) for (m, k), v in sorted(options.items()))


def _lookup(registry, name: str) -> Any:
    """``registry.get(name)``, with an unknown name as the CLI's one error line."""
    try:
        return registry.get(name)
    except UnknownNameError as exc:
        raise HarnessError(exc.problem, exc.fix) from None
