"""A real PostgreSQL server for the tests, and a fresh database URL per test on either backend.

The server is Debian's ``postgresql`` package (``initdb`` and ``pg_ctl`` from ``/usr/lib/postgresql/*/bin`` or
``PATH``), started once per test process in a temporary directory, as the unprivileged ``postgres`` user when the
tests run as root (the server refuses root), listening on 127.0.0.1 and a free port, and stopped at exit.
Where the server binaries or the ``psycopg`` driver are missing, the PostgreSQL variants are skipped with a
reason that says what to install (pytest's ``-ra`` summary shows it).

Test modules choose the backend through a ``db_url`` fixture that calls :func:`new_database`.
"""

from __future__ import annotations

import atexit
import functools
import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

BACKENDS = ("sqlite", "postgresql")
INSTALL = "apt-get install -y postgresql (make test does it when run as root)"


def _binaries() -> Path | None:
    """The directory holding initdb and pg_ctl (the newest Debian version first, then PATH)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name), reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(str(Path(which).parent))
    for directory in map(Path, candidates):
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.cache
def server() -> tuple[str | None, str]:
    """``(base URL, "")`` of this process's server, started on first use, or ``(None, why it is unavailable)``."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "the psycopg driver is not installed (pip install -e .[postgres])"
    binaries = _binaries()
    if binaries is None:
        return None, f"PostgreSQL's server (initdb, pg_ctl) is not installed: {INSTALL}"
    root = Path(tempfile.mkdtemp(prefix="robint-pg-"))
    user = None
    if os.geteuid() == 0:
        import pwd

        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            return None, "the tests run as root and there is no 'postgres' user to run the server as"
        os.chown(root, account.pw_uid, account.pw_gid)
        user = "postgres"
    port = _free_port()
    data = root / "data"
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    steps = (
        [str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8"],
        [str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
    )
    for step in steps:
        done = subprocess.run(step, user=user, capture_output=True, text=True, timeout=120, cwd=root)
        if done.returncode != 0:
            log = (root / "log").read_text()[-500:] if (root / "log").exists() else ""
            return None, f"could not start PostgreSQL ({Path(step[0]).name}): {done.stderr.strip()[-500:]} {log}"

    def stop() -> None:
        subprocess.run(
            [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            user=user,
            capture_output=True,
            timeout=60,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}", ""


def new_database(backend: str, tmp_path: Path) -> str:
    """A URL of a new, empty database: a SQLite file in ``tmp_path``, or a new database on the test server."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'robint.db'}"
    base, why = server()
    if base is None:
        pytest.skip(f"PostgreSQL variant skipped: {why}")
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base.replace("postgresql+psycopg", "postgresql") + "/postgres", autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def count(url: str, sql: str) -> int:
    """``SELECT COUNT(*) ...`` on the database at ``url``; 0 while it (or its tables) do not exist yet."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        return 0
    engine = create_engine(url)
    try:
        with engine.connect() as con:
            return int(con.execute(text(sql)).scalar_one())
    except SQLAlchemyError:
        return 0
    finally:
        engine.dispose()


def rows(url: str) -> tuple[list[tuple], list[tuple]]:
    """The stored numbers of every run in the database: per-example rows and (method, metric, values) rows, in a
    backend-independent form (booleans as ints, JSON parsed)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as con:
            examples = [
                (int(i), int(c), int(a), int(bool(r)), float(p))
                for i, c, a, r, p in con.execute(
                    text("SELECT idx, clean_pred, adv_pred, robust_correct, perturbation FROM examples ORDER BY idx")
                )
            ]
            scores = [
                (m, k, v if isinstance(v, list) else json.loads(v))
                for m, k, v in con.execute(text('SELECT method, metric, "values" FROM metrics ORDER BY 1, 2'))
            ]
    finally:
        engine.dispose()
    return examples, scores


def open_database(url: str) -> None:
    """``store.open_database(url)`` in a child process (importable without torch, so spawning it is cheap)."""
    from harness.store.engine import open_database as open_

    open_(url).kw["bind"].dispose()
