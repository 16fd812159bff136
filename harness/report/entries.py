"""The leaderboard's rows: every completed run read from the database (a row that cannot be read completely is kept,
with the reason; a run whose stored numbers are not those of its per-example rows is left off: :func:`left_off`),
and the selection of one run per model identity and board (:func:`select_rows`), as :class:`Entry` values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from harness import store
from harness.core.threat import parse_eps
from harness.report.scores import Pair, Score, stored_score
from harness.store.verify import run_problems
from metrics.stats import wilson_interval

BOARD_KEYS = ["dataset", "threat_model", "eps_text"]  # the columns that make one board


@dataclass(frozen=True)
class Entry:
    """One model's run on a board (its completed run with the most examples)."""

    run_id: str
    model: str
    n: int
    attack: str
    clean_acc: float
    robust_acc: float
    training: str
    created_at: datetime
    flags: tuple[dict[str, str], ...]
    scores: dict[Pair, Score]
    reported: dict[str, Any] | None = None
    recipe: str = ""
    eps_trained: float | None = None
    seed: int | None = None
    malformed: str | None = None  # why a stored row could not be read completely
    architecture: str = ""
    threat_trained: str = ""  # the training threat model (adversarial training only)
    epochs: int | None = None
    imported: str | None = None  # the archive file the run was imported from (None: measured in this database)
    shared_name: bool = False  # another model (other files or weights) has runs under the same name
    clean_correct: frozenset[int] | None = None  # the test images (indices) it classifies correctly
    explained_output: str = "logit"  # what its attribution methods explain (the suite's ``output``)

    @property
    def robust_interval(self) -> tuple[float, float]:
        """95% Wilson interval of the robust accuracy."""
        return wilson_interval(round(self.robust_acc * self.n), self.n)

    def degenerate(self, method: str) -> dict[str, int]:
        """How many of ``method``'s maps were all-zero, constant or non-finite (from any of its scores)."""
        for (m, _), score in self.scores.items():
            if m == method and "degenerate" in score.details:
                return dict(score.details["degenerate"])
        return {}


def left_off(s: Session) -> list[tuple[str, str, str]]:
    """The completed runs the board leaves off, as (run id, model, reason): their stored numbers are not those of
    their per-example rows (harness.store.verify), e.g. a row written by hand or an older unverified import."""
    out = []
    for run in store.completed_runs(s):
        problems = _problems(run)
        if problems:
            out.append((str(run.id), str(getattr(run.model, "name", "?")), "; ".join(problems)))
    return out


def _problems(run: store.RunRecord) -> list[str]:
    try:
        return run_problems(run)
    except (TypeError, ValueError, AttributeError) as exc:
        return [f"its row cannot be read ({type(exc).__name__})"]


def runs_frame(s: Session) -> pd.DataFrame:
    """One row per completed run whose numbers are those of its rows (:func:`left_off` lists the others) with the
    columns the boards need (``scores``: {(method, metric): Score}; ``identity``: the model row, one per name and
    hashes; ``shared_name``: another identity has runs under the same name); a row whose scores or METADATA cannot
    be read completely is kept, with what could be read and the reason (``malformed``)."""
    rows = []
    for run in store.completed_runs(s):
        if _problems(run):
            continue
        info = run.model.info if isinstance(run.model.info, dict) else {}
        training = info.get("training")
        training = training if isinstance(training, dict) else {}
        problems = []
        scores = {}
        for m in run.metrics:
            try:
                scores[(m.method, m.metric)] = stored_score(m)
            except (TypeError, ValueError) as exc:
                problems.append(f"score {m.method}/{m.metric}: {type(exc).__name__}")
        method = training.get("method", "")
        if not isinstance(method, str):
            problems.append(f"training method {type(method).__name__}")
            method = ""
        rows.append(
            {
                "run_id": run.id,
                "model": str(run.model.name),
                "identity": run.model_id,
                "imported": _imported(run.details),
                "dataset": run.dataset,
                "threat_model": run.threat_model,
                "eps_text": run.eps_text,
                "eps": run.eps,
                "n": run.n_examples,
                "attack": run.attack,
                "clean_acc": run.clean_acc,
                "robust_acc": run.robust_acc,
                "training": method,
                "recipe": recipe_label(method, training, info),
                "eps_trained": _eps(training.get("eps")),
                "seed": training.get("seed") if isinstance(training.get("seed"), int) else None,
                "architecture": str(info.get("architecture") or ""),
                "threat_trained": str(training.get("threat_model") or "") if method != "standard" else "",
                "epochs": training.get("epochs") if isinstance(training.get("epochs"), int) else None,
                "clean_correct": _clean_correct(run),
                "explained_output": _explained_output(run.details),
                "created_at": run.created_at,
                "scores": scores,
                "flags": tuple(f for f in (run.flags or []) if isinstance(f, dict)),
                "malformed": "; ".join(problems) or None,
            }
        )
    frame = pd.DataFrame(rows)
    if len(frame):
        frame["shared_name"] = frame.groupby("model")["identity"].transform("nunique") > 1
    return frame


def _imported(details: Any) -> str | None:
    imported = details.get("imported") if isinstance(details, dict) else None
    return str(imported.get("file") or "an archive file") if isinstance(imported, dict) else None


def _clean_correct(run: store.RunRecord) -> frozenset[int] | None:
    """The indices of the test images the run's model classifies correctly (None without per-example rows)."""
    rows = run.examples
    if not rows:
        return None
    return frozenset(int(r.idx) for r in rows if r.clean_correct is True)


def _explained_output(details: Any) -> str:
    """The model output the run's attribution methods explain (stored suite settings; "logit" when unrecorded)."""
    node = details
    for key in ("interpretability", "settings", "output"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if node in ("logit", "probability") else "logit"


def _eps(value: Any) -> float | None:
    try:
        return parse_eps(str(value))[0] if value is not None else None
    except Exception:  # noqa: BLE001  (a stored value that is not an eps)
        return None


def recipe_label(method: str, training: dict[str, Any], info: dict[str, Any]) -> str:
    """``method threat eps architecture epochs`` (the seed excluded): models sharing it replicate a recipe."""
    if not method:
        return ""
    if method == "standard":
        parts = [method]
    else:
        parts = [method, str(training.get("threat_model") or ""), str(training.get("eps") or "")]
    parts += [str(info.get("architecture") or ""), f"{training.get('epochs')}ep" if training.get("epochs") else ""]
    return " ".join(p for p in parts if p)


def select_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Per table and model identity (its name and file and weights hashes: one model row): its run with the most
    examples, then the newest; ranked by robust accuracy, then clean accuracy. A run of another model under the same
    name is a row of its own (``shared_name``), never a replacement."""
    if frame.empty:
        return frame
    keys = [*BOARD_KEYS, "identity"]
    frame = frame.sort_values(["n", "created_at"]).groupby(keys).tail(1)
    return frame.sort_values(
        ["dataset", "threat_model", "eps", "robust_acc", "clean_acc"], ascending=[True, True, True, False, False]
    )


def to_entries(table: pd.DataFrame, reported: dict[str, dict[str, Any]]) -> list[Entry]:
    """The selected rows of one board as entries, in order, each with its model's reported entry (by model id)."""
    return [
        Entry(
            run_id=row.run_id,
            model=row.model,
            n=row.n,
            attack=row.attack,
            clean_acc=row.clean_acc,
            robust_acc=row.robust_acc,
            training=row.training,
            created_at=row.created_at,
            flags=row.flags,
            scores=row.scores,
            reported=reported.get(row.model),
            recipe=row.recipe,
            eps_trained=row.eps_trained,
            seed=row.seed,
            malformed=row.malformed,
            architecture=row.architecture,
            threat_trained=row.threat_trained,
            epochs=row.epochs,
            imported=imported if isinstance(imported := getattr(row, "imported", None), str) else None,
            shared_name=bool(getattr(row, "shared_name", False)),
            clean_correct=row.clean_correct,
            explained_output=row.explained_output,
        )
        for row in table.itertuples(index=False)
    ]
