"""The examples in the metric library's docstrings run and print what they say (every module of ``metrics``)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import torch

import metrics

MODULES = sorted(m.name for m in pkgutil.walk_packages(metrics.__path__, "metrics."))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, name


def test_the_library_has_examples():
    attempted = sum(doctest.testmod(importlib.import_module(n), extraglobs={"torch": torch}).attempted for n in MODULES)
    assert attempted >= 20
