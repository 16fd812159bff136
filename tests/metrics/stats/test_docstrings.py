"""The examples in metrics.stats docstrings run and print what they say (tests/metrics/test_docstrings.py lists
the metrics.functional modules only)."""

from __future__ import annotations

import doctest

import pytest

from metrics.stats import fid, hierarchical, intervals, multiplicity, paired, permutation


@pytest.mark.parametrize("module", [fid, hierarchical, intervals, multiplicity, paired, permutation])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
