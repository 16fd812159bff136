"""Make ``import autoattack`` resolve to PyPI's ``pyautoattack``.

Why: robustbench 1.1.1 does ``from autoattack import AutoAttack`` (and ``autoattack.state``) at import
time, but the AutoAttack release on PyPI (``pyautoattack`` 0.2.0) installs under the name
``pyautoattack``. pyautoattack uses relative imports only, so registering the package and its
submodules under the name ``autoattack`` lets robustbench import. The TensorFlow adapters
(``fab_tf``, ``utils_tf*``) are skipped: they need TensorFlow. We never call
``robustbench.eval.benchmark`` (it expects upstream's API); robint-bench calls AutoAttack itself.
"""

import importlib
import pkgutil
import sys

_SKIP_PREFIXES = ("fab_tf", "utils_tf")


def install() -> None:
    """Register ``pyautoattack`` (and its torch submodules) as ``autoattack``; idempotent."""
    if "autoattack" in sys.modules:
        return
    import pyautoattack

    sys.modules["autoattack"] = pyautoattack
    for info in pkgutil.iter_modules(pyautoattack.__path__):
        if info.name.startswith(_SKIP_PREFIXES):
            continue
        sys.modules[f"autoattack.{info.name}"] = importlib.import_module(f"pyautoattack.{info.name}")


def import_robustbench():
    """Import and return ``robustbench`` (and its utils) with the shim installed, silencing its import warnings."""
    import warnings

    install()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pkg_resources and torch.jit deprecation notices from its dependencies
        import robustbench
        import robustbench.utils  # noqa: F401

    return robustbench
