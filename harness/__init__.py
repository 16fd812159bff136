"""robint-bench: AutoAttack robustness and quantitative interpretability of image classifiers.

Data flows one way: load model and data, attack, explain, score, store, report.
"""

from harness.errors import HarnessError

__version__ = "0.1.0"
__all__ = ["HarnessError", "__version__"]
