"""The notebook API: evaluate a model object you already have, in this process, and get its numbers back.

    import harness
    result = harness.evaluate(model, dataset="fashion-mnist", n_examples=200)
    result.robust_acc, result.score("expected_gradients", "abpc").mean

:func:`evaluate` runs the same pipeline as ``robint-bench run --trusted`` (harness.pipeline.evaluate): same
configuration resolution, attack, verification, re-classification, interpretability suite, feature visualisation,
storage and run reuse. Only the way the model is loaded differs: the model object is handed to the pipeline through a
small generated submission file whose ``load_model()`` returns that very object (the file exists for the duration
of the call; it names the model by the sha256 of its class and weights, so an identical model and configuration
reuses the stored run). The returned :class:`Result` is read back from the database: exactly the numbers
``robint-bench results --json`` shows for the run.

It is for trusted code only: nothing is sandboxed (the model runs in your process, as with ``--trusted``). The model
is put in eval mode and on the run's device during the call; its training flag is restored afterwards.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.core.config import DEFAULT_DB, RunConfig
from harness.core.errors import HarnessError

__all__ = ["Result", "ScoreSummary", "evaluate", "model_digest"]

_MODELS: dict[str, nn.Module] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ScoreSummary:
    """One stored interpretability score: mean, std, n, 95% interval and details (``not_applicable``, ...)."""

    mean: float | None
    std: float | None
    n: int
    ci_low: float | None
    ci_high: float | None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """A stored run, as ``robint-bench results --json`` reports it (``record`` is that JSON object)."""

    run_id: str
    model: str
    dataset: str
    threat_model: str
    eps: float
    eps_text: str
    n_examples: int
    attack: str
    seed: int
    clean_acc: float
    robust_acc: float
    flags: tuple[dict[str, Any], ...]
    scores: dict[tuple[str, str], ScoreSummary]
    reused: bool
    db: str
    record: dict[str, Any]

    def score(self, method: str, metric: str) -> ScoreSummary:
        """The stored score of ``method`` x ``metric``; KeyError naming what the run has otherwise."""
        try:
            return self.scores[(method, metric)]
        except KeyError:
            raise KeyError(f"no score {method} x {metric}; the run has {sorted(self.scores)}") from None


def evaluate(
    model: nn.Module,
    dataset: str,
    *,
    name: str | None = None,
    metadata: dict[str, Any] | None = None,
    n_examples: int = 1000,
    threat_model: str | None = None,
    eps: str | float | None = None,
    attack: str = "standard",
    seed: int = 0,
    batch_size: int = 250,
    device: str = "auto",
    db: str = DEFAULT_DB,
    data_dir: str | Path | None = None,
    preset: str = "default",
    metrics: str | None = None,
    methods: str | None = None,
    n_explain: int | None = None,
    n_sanity: int | None = None,
    n_composites: int | None = None,
    explain_target: str = "label",
    method_options: tuple[str, ...] = (),
    featurevis: bool | None = None,
    featurevis_options: tuple[str, ...] = (),
    fresh: bool = False,
    progress: bool = True,
    timeout: float | None = None,
) -> Result:
    """Evaluate ``model`` (logits for inputs in [0, 1]) on the first ``n_examples`` test images of ``dataset`` and
    store the run in ``db``, exactly as ``robint-bench run --trusted`` would with the same options.

    Args:
        model: the classifier (any ``nn.Module``; normalisation inside it).
        dataset: a registered data set (``robint-bench list``), e.g. ``"fashion-mnist"`` or ``"cifar10"``.
        name: the name shown on the leaderboard (default: the model's class name).
        metadata: more METADATA facts (``architecture``, ``training``, ``link``, ...; JSON values).
        preset: ``quick``, ``default`` or ``full`` (harness.core.presets): the defaults of ``metrics``, ``methods``,
            ``n_explain``, ``n_sanity``, ``n_composites`` (None: the preset's) and of the feature visualisation.
        progress: progress bars, and the run's header, estimate and AutoAttack log printed as it goes.
        The other arguments are ``robint-bench run``'s options of the same name (``eps``: ``0.1`` or ``"8/255"``).

    The run uses the cores available (harness.core.threads: torch's thread count is set for the call and
    restored after).
    A ``name`` already stored for a different model (other class source or weights) is refused with one line, as
    ``robint-bench run`` refuses it: one name is one model (harness.store.queries.claim_name).

    Returns:
        The stored run's numbers (:class:`Result`).

    Raises:
        HarnessError: the same one-line problems the command line reports.
    """
    if not isinstance(model, nn.Module):
        raise HarnessError(f"evaluate() needs a torch.nn.Module, got {type(model).__name__}", "pass the model itself")
    facts = _metadata(model, dataset, name, metadata)
    digest = model_digest(model)
    was_training = model.training
    source = _shim_source(facts, digest)
    chosen = {"metrics": metrics, "methods": methods, "n_explain": n_explain, "n_sanity": n_sanity}
    chosen["n_composites"] = n_composites
    given = {key for key, value in chosen.items() if value is not None}
    if featurevis_options:
        given.add("featurevis_options")
    with tempfile.TemporaryDirectory(prefix="robint-notebook-") as tmp:
        shim = Path(tmp) / f"{_slug(facts['name'])}.py"
        shim.write_text(source)
        config = RunConfig(
            model=shim,
            dataset=dataset,
            n_examples=n_examples,
            threat_model=threat_model,
            eps=None if eps is None else str(eps),
            attack=attack,
            seed=seed,
            batch_size=batch_size,
            device=device,
            data_dir=None if data_dir is None else Path(data_dir),
            db=db,
            fresh=fresh,
            progress=progress,
            preset=preset,
            **{key: value for key, value in chosen.items() if value is not None},
            explain_target=explain_target,
            method_options=tuple(method_options),
            trusted=True,  # the model object lives in this process: nothing can be sandboxed
            timeout=timeout,
            featurevis=featurevis,
            featurevis_options=tuple(featurevis_options),
        )
        from harness.core import threads
        from harness.core.presets import apply_preset
        from harness.pipeline.evaluate import evaluate as run_pipeline

        config = apply_preset(config, given)
        with _LOCK:
            _MODELS[digest] = model
        before = torch.get_num_threads()
        try:
            torch.set_num_threads(threads.decide().count)
            summary = run_pipeline(config, echo=print if progress else None)
        finally:
            torch.set_num_threads(before)
            with _LOCK:
                _MODELS.pop(digest, None)
            model.train(was_training)
    return _result(db, summary.run_id, reused=summary.reused)


def model_digest(model: nn.Module) -> str:
    """sha256 of the model's class (module, name and source when available) and of every state-dict entry (name,
    dtype, shape, bytes): what identifies a notebook model across calls."""
    h = hashlib.sha256()
    cls = type(model)
    h.update(f"{cls.__module__}.{cls.__qualname__}\n".encode())
    try:
        h.update(inspect.getsource(cls).encode())
    except (OSError, TypeError):  # defined interactively: the name and the weights identify it
        pass
    for key, value in model.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        h.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return h.hexdigest()


def _registered_model(digest: str) -> nn.Module:
    """The model object :func:`evaluate` is evaluating (called by the generated submission's ``load_model``)."""
    with _LOCK:
        model = _MODELS.get(digest)
    if model is None:
        raise HarnessError(
            "this generated submission only works inside harness.api.evaluate()", "call harness.evaluate(model, ...)"
        )
    return model


def _metadata(model: nn.Module, dataset: str, name: str | None, extra: dict[str, Any] | None) -> dict[str, Any]:
    facts = {"name": name or type(model).__name__, "dataset": dataset, "architecture": type(model).__name__}
    facts.update(extra or {})
    facts["name"], facts["dataset"] = name or facts["name"], dataset
    try:
        return json.loads(json.dumps(facts))
    except (TypeError, ValueError) as exc:
        raise HarnessError(
            f"metadata must hold JSON values only ({exc})", "pass strings, numbers, lists, dicts"
        ) from None


def _shim_source(facts: dict[str, Any], digest: str) -> str:
    return (
        f'"""A model object handed to harness.api.evaluate (class and weights sha256 {digest}); generated for '
        'the duration of the call."""\n\n'
        "from harness.api import _registered_model\n\n"
        f"METADATA = {facts!r}\n\n\n"
        "def load_model():\n"
        f"    return _registered_model({digest!r})\n"
    )


def _result(db: str, run_id: str, *, reused: bool) -> Result:
    from harness import store
    from harness.report.results import result_record

    with store.transaction(store.open_database(db, create=False)) as s:
        record = result_record(store.get_run(s, run_id))
    scores = {
        (method, metric): ScoreSummary(
            s["mean"], s["std"], s["n"], s["ci_low"], s["ci_high"], dict(s.get("details") or {})
        )
        for method, by_metric in record["metrics"].items()
        for metric, s in by_metric.items()
    }
    return Result(
        run_id=record["run_id"],
        model=record["model"],
        dataset=record["dataset"],
        threat_model=record["threat_model"],
        eps=record["eps"],
        eps_text=record["eps_text"],
        n_examples=record["n_examples"],
        attack=record["attack"],
        seed=record["seed"],
        clean_acc=record["clean_acc"],
        robust_acc=record["robust_acc"],
        flags=tuple(record["flags"] or ()),
        scores=scores,
        reused=reused,
        db=db,
        record=record,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")[:60] or "model"
