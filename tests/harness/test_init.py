"""The package itself (harness/__init__.py): its version has one home, pyproject.toml."""

import tomllib

import harness
from tests.conftest import ROOT


def test_the_version_is_pyprojects():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert harness.__version__ == harness.version() == project["version"]
    from harness import __version__

    assert __version__ == project["version"]


def test_a_source_checkout_without_an_install_reads_pyproject():
    """No installed distribution of that name: the pyproject.toml next to the package gives the version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert harness.version("robint-bench-never-installed") == project["version"]
