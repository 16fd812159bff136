"""Resolving a run's configuration, once: the options are checked and parsed before anything is imported
(:func:`check_options`, giving a :class:`~harness.pipeline.plan.Request`), then completed with the defaults from the
submission's METADATA and the data set's standard threat model (:func:`resolve`, giving the
:class:`~harness.pipeline.plan.RunPlan`). The parent resolves; the worker receives the result and cannot change
it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from harness.attack.registry import parse_attack
from harness.core.config import ResolvedConfig, RunConfig
from harness.core.errors import HarnessError
from harness.core.presets import check_preset
from harness.core.threat import check_eps, parse_eps, parse_threat_model
from harness.data import ensure_split, get_dataset
from harness.pipeline.batching import AUTO, check_batch_sizes, chunk_size
from harness.pipeline.budgets import Budgets
from harness.pipeline.channels import WorkerLimits, process_limit
from harness.pipeline.plan import Request, RunPlan, Storage
from harness.pipeline.source import ModelSource
from metrics.attribution import METHODS
from metrics.featurevis.pipeline import FeatureVisConfig
from metrics.registry import METRICS, attribution_metrics
from metrics.registry_base import UnknownNameError
from metrics.suite import DEFAULT_METHOD_OPTIONS, DEFAULT_METHODS, DEFAULT_METRICS, SuiteConfig


def check_options(config: RunConfig) -> Request:
    """Everything that can be checked before the submission is imported, parsed once into the run's
    :class:`Request` (fails fast, touches nothing)."""
    if (config.model is None) == (config.robustbench is None):
        raise HarnessError(
            "give exactly one of --model FILE and --robustbench MODEL_ID", "e.g. --model submissions/foo.py"
        )
    if config.robustbench is not None and config.dataset is None:
        raise HarnessError("--robustbench needs --dataset", "e.g. --dataset cifar10 --threat-model Linf")
    eps = parse_eps(config.eps) if config.eps is not None else None
    info = get_dataset(config.dataset) if config.dataset is not None else None
    threat_model = parse_threat_model(config.threat_model) if config.threat_model is not None else None
    attack = parse_attack(config.attack)
    if config.n_examples < 1:
        raise HarnessError(f"--n-examples {config.n_examples} must be positive", "use e.g. 1000")
    check_batch_sizes(config.batch_size, config.chunk_size)
    if config.stall_timeout <= 0 or (config.timeout is not None and config.timeout <= 0):
        raise HarnessError("timeouts must be positive", "e.g. --stall-timeout 600")
    check_device(config.device)
    return Request(
        model=config.model,
        robustbench=config.robustbench,
        model_dir=config.model_dir,
        data_dir=config.data_dir,
        dataset=config.dataset,
        dataset_info=info,
        threat_model=threat_model,
        eps=eps,
        attack=attack,
        n_examples=config.n_examples,
        seed=config.seed,
        chunk=chunk_size(config.batch_size, config.chunk_size),
        auto_batch=config.batch_size == AUTO,
        suite=resolve_suite(config),
        featurevis=resolve_featurevis(config),
        limits=WorkerLimits(
            trusted=config.trusted,
            device=config.device,
            progress=config.progress,
            memory_limit=config.memory_limit,
            cpu_limit=config.cpu_limit,
            process_limit=process_limit(config.process_limit),
            stall_timeout=config.stall_timeout,
            timeout=config.timeout,
        ),
        storage=Storage(
            db=config.db,
            fresh=config.fresh,
            rescore=config.rescore,
            sweep=None if config.sweep is None else dict(config.sweep),
        ),
        preset=check_preset(config.preset),
    )


def resolve(request: Request, metadata: Mapping[str, Any], *, source: ModelSource, data_dir: Path) -> RunPlan:
    """The run's plan: the request's data set, threat model and eps, else the submission's METADATA, else the data
    set's standard threat model and its eps; checks that eps fits the threat model and that the training split is
    there when the run needs it. ``source`` and ``data_dir``: the located model and data directory."""
    dataset = request.dataset or str(metadata["dataset"])
    info = request.dataset_info if request.dataset_info is not None else get_dataset(dataset)
    if request.dataset and metadata.get("dataset") and request.dataset != metadata["dataset"]:
        raise HarnessError(
            f"the submission is for {metadata['dataset']}, not {request.dataset}", "drop --dataset or fix METADATA"
        )
    threat_model = request.threat_model or parse_threat_model(metadata.get("threat_model") or info.default_threat_model)
    if request.eps is not None:
        eps, eps_text = request.eps
    elif metadata.get("eps") is not None and metadata.get("threat_model", threat_model) == threat_model:
        eps, eps_text = parse_eps(str(metadata["eps"]))
    else:
        eps, eps_text = parse_eps(info.default_eps[threat_model])
    check_eps(threat_model, eps, info.input_numel)
    check_training_split(request.suite, request.featurevis, dataset, data_dir)
    resolved = ResolvedConfig(
        dataset=dataset,
        threat_model=threat_model,
        eps=eps,
        eps_text=eps_text,
        n_examples=request.n_examples,
        attack=request.attack.text,
        seed=request.seed,
        batch_size=request.chunk,
    )
    limits = request.limits
    return RunPlan(
        resolved=resolved,
        attack=request.attack,
        dataset=info,
        suite=request.suite,
        featurevis=request.featurevis,
        source=source,
        metadata=metadata,
        data_dir=data_dir,
        limits=limits,
        budgets=Budgets.of(limits.stall_timeout, limits.timeout, request.attack.units, info.input_numel),
        auto_batch=request.auto_batch,
        storage=request.storage,
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


def training_split_users(suite: SuiteConfig | None, featurevis: FeatureVisConfig | None) -> list[str]:
    """What in this run reads the training split: attribution methods with a training-image background
    (expected_gradients, gradient_shap) and the feature visualisation's class generation."""
    users = [] if suite is None else [m for m in suite.methods if METHODS.get(m).needs_background]
    if featurevis is not None:
        users.append("feature visualisation")
    return users


def check_training_split(
    suite: SuiteConfig | None, featurevis: FeatureVisConfig | None, dataset: str, data_dir: Path | None
) -> None:
    """Before the attack: the training split is there when the run will need it (else one clear error saying what
    needs it and how to run without it), instead of a failure after the attack."""
    users = training_split_users(suite, featurevis)
    if not users:
        return
    try:
        ensure_split(dataset, "train", data_dir=data_dir)
    except HarnessError as exc:
        others = [m for m in (suite.methods if suite else ()) if m not in users] or ["integrated_gradients", "saliency"]
        without = f"--methods {','.join(others)}" + (" --no-featurevis" if "feature visualisation" in users else "")
        raise HarnessError(
            f"{' and '.join(users)} need{'s' if len(users) == 1 else ''} training images of {dataset}, and its "
            f"training split is not available: {exc.problem}",
            f"{exc.fix}; or run without them: {without}",
        ) from None


def resolve_suite(config: RunConfig) -> SuiteConfig | None:
    """The interpretability suite asked for (``--metrics none`` gives None); :func:`check_options` calls it, once
    per run."""
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
    runs and tests, leaves it out). Options are ``--featurevis-option KEY=VALUE`` (FeatureVisConfig fields).
    :func:`check_options` calls it, once per run."""
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
