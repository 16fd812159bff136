"""Fixtures of the bad-input corpus: a database holding one completed run, a copy of the corpus per case, and the
checks every case makes (one error line, no traceback, completed runs unchanged, nothing left running)."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import store
from tests.conftest import ROOT, in_process

CORPUS = Path(__file__).with_name("submissions")
FAST = [
    "--n-examples",
    "8",
    "--batch-size",
    "8",
    "--attack",
    "apgd-ce",
    "--metrics",
    "none",
    "--quiet",
    "--stall-timeout",
    "60",
]


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    """A database holding one completed run, built with the real storage layer."""
    path = tmp_path_factory.mktemp("db") / "template.db"
    sessions = store.open_database(f"sqlite:///{path}")
    with store.transaction(sessions) as s:
        model = store.get_or_create_model(
            s,
            name="existing",
            source="existing.py",
            file_sha256="ab" * 32,
            weights_sha256=None,
            info={"name": "existing"},
        )
        s.add(
            store.RunRecord(
                id="existing0001",
                model_id=model.id,
                dataset="fashion-mnist",
                threat_model="Linf",
                eps=0.1,
                eps_text="0.1",
                n_examples=1,
                seed=0,
                attack="standard",
                config_key="k",
                status=store.COMPLETE,
                clean_acc=1.0,
                robust_acc=0.0,
                config={},
                provenance={},
                examples=[
                    store.ExampleRecord(
                        idx=0,
                        label=9,
                        clean_pred=9,
                        adv_pred=3,
                        clean_correct=True,
                        robust_correct=False,
                        perturbation=0.1,
                    )
                ],
            )
        )
    sessions.kw["bind"].dispose()
    return path


def rows(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table, sorted."""
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {t: sorted(con.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}


def completed(db: Path) -> list[tuple]:
    """The completed runs with their examples and scores (what results and the leaderboard show)."""
    with sqlite3.connect(db) as con:
        runs = con.execute("SELECT * FROM runs WHERE status = 'complete' ORDER BY id").fetchall()
        ids = [r[0] for r in runs]
        examples = [con.execute("SELECT * FROM examples WHERE run_id = ? ORDER BY idx", (i,)).fetchall() for i in ids]
        metrics = [con.execute("SELECT * FROM metrics WHERE run_id = ?", (i,)).fetchall() for i in ids]
    return [runs, examples, metrics]


def run_rows(db: Path, run_id: str) -> list[list[tuple]]:
    """One run's row, examples and scores."""
    with sqlite3.connect(db) as con:
        return [
            con.execute(f"SELECT * FROM {table} WHERE {key} = ? ORDER BY 1", (run_id,)).fetchall()
            for table, key in (("runs", "id"), ("examples", "run_id"), ("metrics", "run_id"))
        ]


class Case:
    """A copy of the corpus (``dir``) and of the database (``path``) for one case; ``run(...)`` calls the CLI."""

    def __init__(self, corpus: Path, db: Path, data_dir: Path) -> None:
        self.dir, self.path, self.data_dir = corpus, db, data_dir
        self.before, self.completed_before = rows(db), completed(db)
        self.existing_before = run_rows(db, "existing0001")

    def submission(self, name: str, **constants: object) -> Path:
        """The corpus submission ``name`` with module-level constants set (``MODE = ...``, ``METADATA = ...``): a
        submission reads no file but itself and the weights its METADATA names, so a case configures it by
        rewriting it."""
        path = self.dir / f"{name}.py"
        text = path.read_text()
        for key, value in constants.items():
            text, count = re.subn(rf"(?m)^{key} = .*$", lambda _, k=key, v=value: f"{k} = {v!r}", text)
            assert count == 1, f"{name}.py sets {key} {count} times"
        path.write_text(text)
        return path

    def command(self, *args: str, db_url: str | None = None) -> list[str]:
        return [
            sys.executable,
            "-m",
            "harness",
            "run",
            *args,
            "--db",
            db_url or f"sqlite:///{self.path}",
            "--data-dir",
            str(self.data_dir),
        ]

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        preexec=None,
        db_url: str | None = None,
        timeout: float = 300,
        prefix: list[str] | None = None,
    ) -> subprocess.CompletedProcess:
        command = self.command(*args, db_url=db_url)
        if env is None and preexec is None and prefix is None:  # the parent here, the worker sandboxed as always
            return in_process(*command[3:], timeout=timeout)
        if prefix is not None:  # instead of ``python -m harness``
            command = [*prefix, *command[3:]]
        return subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            preexec_fn=preexec,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Any other command, e.g. ``leaderboard`` (these start no worker), in this process."""
        return in_process(*args)

    def run_here(self, *args: str, db_url: str | None = None) -> subprocess.CompletedProcess:
        """``run`` in this process, for cases whose failure is the parent's or the contract's, not the sandbox's
        (pass ``--trusted`` to keep the submission in this process too)."""
        return in_process(*self.command(*args, db_url=db_url)[3:])


@pytest.fixture()
def case(tmp_path, template_db, data_dir) -> Case:
    corpus = tmp_path / "submissions"
    shutil.copytree(CORPUS, corpus)
    db = tmp_path / "results" / "robint.db"
    db.parent.mkdir()
    shutil.copy(template_db, db)
    return Case(corpus, db, data_dir)


def assert_clean_failure(case: Case, proc: subprocess.CompletedProcess, *fragments: str, whole_db: bool = True) -> str:
    """Non-zero exit, one ``error:`` line holding ``fragments``, no traceback, no control character; the database
    unchanged (``whole_db``) or at least its completed runs (a run that failed mid-way leaves a failed run)."""
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    if whole_db:
        assert rows(case.path) == case.before
    assert completed(case.path) == case.completed_before
    return lines[0]


def marked_processes(marker: str) -> list[int]:
    """Processes whose command line holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if marker.encode() in Path("/proc", entry, "cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def wait_until(condition, timeout: float = 15.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def worker_dirs(pid: int) -> list[Path]:
    """The worker temporary directories a harness process ``pid`` made (harness.worker.containment)."""
    import tempfile

    return sorted(Path(tempfile.gettempdir()).glob(f"robint-worker-{pid}-*"))
