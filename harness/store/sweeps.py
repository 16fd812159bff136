"""Sweeps in the database: which models a sweep runs (its manifest, a ``robint_meta`` row) and, from the runs tagged
with it, how far it got. A run's ``details["sweeps"]`` maps each sweep id that ran it to the sweep's entry (the
model) and the entry's key (its settings), so a rerun of the sweep knows which entries are complete."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from harness.store.queries import all_runs, effective_status
from harness.store.schema import COMPLETE, FAILED, INTERRUPTED, RUNNING, Meta, RunRecord, utcnow

MAX_ID = 48  # robint_meta keys are 64 characters: "sweep:" + the id
_RANK = {COMPLETE: 0, RUNNING: 1, INTERRUPTED: 2, FAILED: 3}
PENDING = "pending"


@dataclass
class EntryStatus:
    """One model of a sweep: its name, settings key, status (complete, running, interrupted, failed or pending)
    and the run that status comes from."""

    name: str
    key: str
    status: str
    run: RunRecord | None = None


def save_sweep(s: Session, sweep_id: str, entries: list[dict[str, str]], settings: dict[str, Any]) -> None:
    """Record (or replace) the sweep's manifest: its entries (``name``, ``key``) and how it was submitted."""
    value = json.dumps({"entries": entries, "settings": settings, "saved_at": utcnow().isoformat()}, default=str)
    s.merge(Meta(key=f"sweep:{sweep_id}", value=value))


def load_sweep(s: Session, sweep_id: str) -> dict[str, Any] | None:
    row = s.get(Meta, f"sweep:{sweep_id}")
    return None if row is None else json.loads(row.value)


def tag(details: dict[str, Any], sweep: dict[str, str]) -> dict[str, Any]:
    """``details`` with the run marked as sweep ``sweep["id"]``'s entry ``sweep["entry"]`` (settings ``sweep["key"]``).

    >>> tag({"a": 1}, {"id": "s1", "entry": "m", "key": "k"})
    {'a': 1, 'sweeps': {'s1': {'entry': 'm', 'key': 'k'}}}
    """
    sweeps = dict(details.get("sweeps", {}))
    sweeps[sweep["id"]] = {"entry": sweep["entry"], "key": sweep["key"]}
    return {**details, "sweeps": sweeps}


def sweep_status(s: Session, sweep_id: str, entries: list[dict[str, str]]) -> list[EntryStatus]:
    """Each entry's status: that of its best run with the entry's current key (complete before running before
    interrupted before failed), ``pending`` when it has none."""
    now = utcnow()
    best: dict[str, tuple[str, RunRecord]] = {}
    for run in all_runs(s):  # newest first: the newest run wins among runs of one status
        mark = (run.details or {}).get("sweeps", {}).get(sweep_id)
        if not mark:
            continue
        status = effective_status(run, now)
        known = best.get(mark["key"])
        if known is None or _RANK.get(status, 9) < _RANK.get(known[0], 9):
            best[mark["key"]] = (status, run)
    out = []
    for entry in entries:
        status, run = best.get(entry["key"], (PENDING, None))
        out.append(EntryStatus(entry["name"], entry["key"], status, run))
    return out


def progress_line(sweep_id: str, statuses: list[EntryStatus]) -> str:
    """One line: how many of the sweep's models are complete, running, interrupted, failed, pending.

    >>> progress_line("s", [EntryStatus("a", "k", "complete"), EntryStatus("b", "l", "pending")])
    'sweep s: 1 of 2 models complete, 1 pending'
    """
    counts = Counter(e.status for e in statuses)
    rest = [f"{counts[k]} {k}" for k in (RUNNING, INTERRUPTED, FAILED, PENDING) if counts[k]]
    return f"sweep {sweep_id}: {counts[COMPLETE]} of {len(statuses)} models complete" + "".join(", " + r for r in rest)
