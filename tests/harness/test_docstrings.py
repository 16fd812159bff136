"""The examples in the harness's docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import harness


def _modules() -> list[str]:
    return sorted(
        m.name for m in pkgutil.walk_packages(harness.__path__, "harness.") if not m.name.endswith("__main__")
    )


def test_docstring_examples():
    attempted = 0
    for name in _modules():
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, name
        attempted += result.attempted
    assert attempted >= 5
