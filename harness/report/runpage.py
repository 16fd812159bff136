"""One run's page of the HTML site, as values read from the database (harness.report.html_runs writes them): its
numbers (accuracies with intervals, AutoAttack's log, every stored score), settings, versions, flags, stage times
and figures. Figures are the files of the database that holds the run (harness.store.files: ``runs/<run id>/``
beside a SQLite file); the figures a run wrote are listed in its ``details["figures"]``, so a missing one is
known, never silently absent."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import store
from harness.report.wording import autoattack_log
from metrics.stats import wilson_interval

# what each figure shows (harness.report.figures)
FIGURE_CAPTIONS = {
    "attributions.png": "Attributions on the first test images: one row per image, one column per method "
    "(diverging colour map, red positive).",
    "adversarial.png": "Clean and adversarial images with the amplified perturbation and both predictions.",
    "inversions.png": "Representation inversion: the target image, the seeds (another image, grey noise) and the "
    "inversions from each.",
    "generated.png": "Class-specific generation: images generated for each class (a red frame: the reference "
    "judge assigns another class).",
}
STANDARD_FIGURES = tuple(FIGURE_CAPTIONS)


@dataclass(frozen=True)
class ScoreRow:
    """One stored score: method, metric, mean (None: n/a with ``reason``), 95% interval and n."""

    method: str
    metric: str
    mean: float | None
    low: float | None
    high: float | None
    n: int
    reason: str = ""


@dataclass
class RunPage:
    """What a run page shows; ``figures``: the run's figure files found (name -> path), ``missing``: those it wrote
    that are not there (or, for a database without a files directory, every one it wrote)."""

    run_id: str
    model: str
    dataset: str
    threat_model: str
    eps_text: str
    n: int
    attack: str
    clean: tuple[float, float, float]  # accuracy, 95% Wilson interval
    robust: tuple[float, float, float]
    autoattack: str
    settings: list[tuple[str, str]]
    versions: list[tuple[str, str]]
    flags: list[tuple[str, str]]
    times: list[tuple[str, float]]
    scores: list[ScoreRow]
    figures: dict[str, Path] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    files_dir: Path | None = None


def run_page(run: store.RunRecord, runs_root: Path | None) -> RunPage:
    """The page of ``run``; its figures are looked up in ``runs_root / <run id>`` (None: a database without files,
    e.g. PostgreSQL)."""
    details = run.details if isinstance(run.details, dict) else {}
    provenance = run.provenance if isinstance(run.provenance, dict) else {}
    directory = None if runs_root is None else runs_root / run.id
    found = {p.name: p for p in sorted(directory.glob("*.png"))} if directory and directory.is_dir() else {}
    expected = details.get("figures")
    expected = [str(name) for name in expected] if isinstance(expected, list) else []
    return RunPage(
        run_id=run.id,
        model=str(run.model.name),
        dataset=run.dataset,
        threat_model=run.threat_model,
        eps_text=run.eps_text,
        n=run.n_examples,
        attack=run.attack,
        clean=_accuracy(run.clean_acc, run.n_examples),
        robust=_accuracy(run.robust_acc, run.n_examples),
        autoattack=autoattack_log((details.get("autoattack") or {}).get("accuracy_after") or {}),
        settings=_settings(run, details),
        versions=_versions(provenance),
        flags=[(str(f.get("code")), str(f.get("message"))) for f in run.flags or [] if isinstance(f, dict)],
        times=[(str(k), float(v)) for k, v in (run.timings or {}).items() if isinstance(v, int | float)],
        scores=_scores(run.metrics),
        figures=found,
        missing=[name for name in expected if name not in found],
        files_dir=directory,
    )


def _accuracy(value: float, n: int) -> tuple[float, float, float]:
    low, high = wilson_interval(round(value * n), n)
    return value, low, high


def _settings(run: store.RunRecord, details: dict[str, Any]) -> list[tuple[str, str]]:
    config = run.config if isinstance(run.config, dict) else {}
    rows = [
        ("data", f"{run.dataset}, first {run.n_examples} test images"),
        ("threat model", f"{run.threat_model}, eps = {run.eps_text}"),
        ("attack", f"AutoAttack {run.attack}, seed {run.seed}, chunks of {config.get('batch_size', '?')}"),
        ("device", f"{config.get('device', '?')}" + (" (--trusted: not sandboxed)" if config.get("trusted") else "")),
    ]
    if config.get("preset"):
        rows.append(("preset", str(config["preset"])))
    suite = (details.get("interpretability") or {}).get("settings")
    if isinstance(suite, dict):
        rows.append(("interpretability", _flat(suite)))
    featurevis = (details.get("featurevis") or {}).get("settings")
    if isinstance(featurevis, dict):
        rows.append(("feature visualisation", _flat(featurevis)))
    if details.get("rescored"):
        rows.append(("rescored", _flat(details["rescored"])))
    return rows


def _versions(provenance: dict[str, Any]) -> list[tuple[str, str]]:
    versions = provenance.get("versions") if isinstance(provenance.get("versions"), dict) else {}
    rows = [(str(k), str(v)) for k, v in versions.items()]
    git = provenance.get("git") if isinstance(provenance.get("git"), dict) else {}
    if git.get("commit"):
        rows.append(("git", f"{git['commit']}" + (" (uncommitted changes)" if git.get("dirty") else "")))
    hardware = provenance.get("hardware") if isinstance(provenance.get("hardware"), dict) else {}
    if hardware:
        rows.append(("hardware", _flat(hardware)))
    return rows


def _scores(metrics: list[store.MetricRecord]) -> list[ScoreRow]:
    rows = []
    for m in sorted(metrics, key=lambda m: (m.method, m.metric)):
        details = m.details if isinstance(m.details, dict) else {}
        reason = "" if m.mean is not None else str(details.get("not_applicable", "no values"))
        rows.append(ScoreRow(str(m.method), str(m.metric), m.mean, m.ci_low, m.ci_high, int(m.n or 0), reason))
    return rows


def _flat(value: Any) -> str:
    """A settings dict as ``key value, key value`` (lists joined)."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {_flat(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "/".join(_flat(v) for v in value)
    return str(value)
