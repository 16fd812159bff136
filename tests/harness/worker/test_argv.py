"""The worker's command line finds ``harness`` and the ``PYTHONPATH`` packages without an install: the worker runs
isolated (``-I``) in a scrubbed environment, so what the parent imports from a source checkout or ``PYTHONPATH``
must be put back explicitly (seen on a GPU machine whose packages came through ``PYTHONPATH``)."""

import subprocess
import sys

import pytest

from harness.worker.channel import worker_argv

BASE = getattr(sys, "_base_executable", sys.executable)  # outside the venv: no editable install of harness
SCRUBBED = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"}


def _run(argv, cwd):
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, env=SCRUBBED, timeout=60)


@pytest.fixture
def bare_interpreter(tmp_path):
    if _run([BASE, "-I", "-c", "import harness"], tmp_path).returncode == 0:
        pytest.skip("harness is installed in the base interpreter itself")
    return BASE


def test_an_uninstalled_checkout_starts_its_worker(bare_interpreter, tmp_path):
    plain = _run([bare_interpreter, "-I", "-m", "harness.core.errors"], tmp_path)
    assert "No module named 'harness'" in plain.stderr  # the bug: an isolated interpreter cannot see the checkout
    argv = worker_argv("harness.core.errors")
    done = _run([bare_interpreter, *argv[1:]], tmp_path)
    assert done.returncode == 0, done.stderr


def test_pythonpath_packages_reach_the_worker(bare_interpreter, tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "carried_pkg.py").write_text("import sys\nprint('carried from', __file__)\n")
    monkeypatch.setenv("PYTHONPATH", str(site))
    done = _run([bare_interpreter, *worker_argv("carried_pkg")[1:]], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"carried from {site / 'carried_pkg.py'}"


@pytest.mark.parametrize("pid_namespace", [True, False])
def test_the_channel_asks_the_worker_for_its_containment(tmp_path, pid_namespace):
    """A CUDA run's channel asks for no PID namespace (CUDA fails to initialise in one, harness.pipeline.channels);
    the worker's sandbox report says which containment it got."""
    from harness.worker.channel import SubprocessChannel

    channel = SubprocessChannel(
        read_paths=[tmp_path],
        memory_bytes=None,
        memory_limit_kind="address_space",
        cpu_seconds=None,
        stall_timeout=60,
        timeout=120,
        progress=False,
        pid_namespace=pid_namespace,
    )
    try:
        got = channel.sandbox_report["containment"]
    finally:
        channel.close()
    if pid_namespace and got != "pid-namespace":
        pytest.skip("this machine cannot create PID namespaces")
    assert got == ("pid-namespace" if pid_namespace else "subreaper")
