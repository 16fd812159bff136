"""robint-bench: AutoAttack robustness and quantitative interpretability of image classifiers.

Data flows one way: load model and data, attack, explain, score, store, report.

``harness.evaluate(model, dataset=...)`` evaluates a model object in this process (the notebook API,
harness.api); it is imported on first use, so ``import harness`` stays light.
"""

from importlib import import_module
from typing import Any

from harness.errors import HarnessError

__version__ = "0.1.0"
__all__ = ["HarnessError", "Result", "__version__", "evaluate"]

_LAZY = ("evaluate", "Result")


def __getattr__(name: str) -> Any:
    # import_module, not an import statement: harness.api reaches the whole pipeline, and the layers that import
    # ``harness`` for __version__ (reports, the worker) must not appear to depend on it.
    if name in _LAZY:
        return getattr(import_module("harness.api"), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
