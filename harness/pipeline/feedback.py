"""What a run tells its user while it works: a header with the resolved settings (before any stage starts),
AutoAttack's own log per chunk (its initial accuracy and the robust accuracy after each sub-attack, worded as
AutoAttack logs them) and over the whole run, and each stage as it starts. The short result summary at the end is
read from the database (harness.report.summary). Text only: the caller decides where it goes (``echo``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from harness.core.threads import Threads
from harness.pipeline.plan import RunPlan
from harness.report.wording import autoattack_log

if TYPE_CHECKING:
    from metrics.suite import SuiteConfig

Echo = Callable[[str], None]


def header(plan: RunPlan, *, threads: Threads, device: str, preset: str, model: str) -> list[str]:
    """The run's resolved settings, one ``key  value`` row each, under a title line."""
    r = plan.resolved
    rows = [
        ("data", f"{r.dataset}, first {r.n_examples} test image{'s' if r.n_examples != 1 else ''}"),
        ("threat model", f"{r.threat_model}, eps = {r.eps_text}"),
        (
            "attack",
            f"AutoAttack {r.attack} ({', '.join(plan.attack.attacks)}), seed {r.seed}, "
            f"chunks of {min(r.batch_size, r.n_examples)}",
        ),
        ("explain", _suite(plan)),
        ("featurevis", _featurevis(plan)),
        ("device", f"{device}, {threads.describe()} threads per process"),
        ("worker", "in this process (--trusted: not sandboxed)" if plan.limits.trusted else "sandboxed"),
        ("database", _database(plan.storage.db)),
    ]
    width = max(len(k) for k, _ in rows)
    title = f"robint-bench run: {model} ({plan.source.source}), preset {preset}"
    return [title, *(f"  {key:<{width}}  {value}" for key, value in rows)]


def _suite(plan: RunPlan) -> str:
    suite = plan.suite
    if suite is None:
        return "off (--metrics none)"
    n = min(suite.n_explain, plan.resolved.n_examples)
    return (
        f"{', '.join(_method(suite, m) for m in suite.methods)} x {_count(len(suite.metrics), 'metric')} "
        f"+ {len(suite.controls)} controls on {_count(n, 'image')}; {_count(suite.n_sanity, 'sanity image')}, "
        f"{_count(suite.n_composites, 'GridPG composite')}" + ("; reliability" if suite.reliability else "")
    )


def _method(suite: SuiteConfig, name: str) -> str:
    """``integrated_gradients (n_steps=32, n_trials=4)``: a method with the options it runs with."""
    options = [f"{key}={value}" for method, key, value in suite.method_options if method == name]
    return f"{name} ({', '.join(options)})" if options else name


def _count(n: int, noun: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _featurevis(plan: RunPlan) -> str:
    fv = plan.featurevis
    if fv is None:
        return "off"
    classes = plan.dataset.num_classes
    return (
        f"{fv.n_inversion} inversions x {fv.inversion_steps} steps, {fv.per_class} x {classes} generations x "
        f"{fv.generation_steps} steps"
    )


def _database(db: str) -> str:
    """The database URL without its password."""
    from sqlalchemy.engine import make_url

    return make_url(db).render_as_string(hide_password=True)


def chunk_line(start: int, end: int, accuracy_after: Mapping[str, Any]) -> str:
    """One attacked chunk: ``attack [0, 50): initial accuracy: ...``."""
    return f"attack [{start}, {end}): {autoattack_log(accuracy_after)}"
