"""robint-bench: AutoAttack robustness and quantitative interpretability of image classifiers.

Data flows one way: load model and data, attack, explain, score, store, report.

``harness.evaluate(model, dataset=...)`` evaluates a model object in this process (the notebook API,
harness.api); it is imported on first use, so ``import harness`` stays light.
"""

from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError

__all__ = ["HarnessError", "Result", "__version__", "evaluate"]

_LAZY = ("evaluate", "Result")


def __getattr__(name: str) -> Any:
    # import_module, not an import statement: harness.api reaches the whole pipeline, and the layers that import
    # ``harness`` for __version__ (reports) must not appear to depend on it.
    if name in _LAZY:
        return getattr(import_module("harness.api"), name)
    if name == "__version__":
        return version()
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


@cache
def version(distribution: str = "robint-bench") -> str:
    """The package's version, whose one home is pyproject.toml: the installed package's metadata, else (a source
    checkout used without installing it) the ``[project]`` table of the pyproject.toml next to the package."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed(distribution)
    except PackageNotFoundError:
        import tomllib

        try:
            project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "0+unknown"
        return str(project["version"]) if project.get("name") == "robint-bench" else "0+unknown"
