"""The examples in the public docstrings run and print what they say."""

from __future__ import annotations

import doctest

import pytest

from metrics.functional import _stats, complexity, localisation


@pytest.mark.parametrize("module", [_stats, complexity, localisation])
def test_docstring_examples(module):
    result = doctest.testmod(module, extraglobs={"torch": __import__("torch")}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
