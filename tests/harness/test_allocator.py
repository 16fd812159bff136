"""harness.core.allocator: after tune(), freeing and re-allocating a large block costs no new page faults."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# 20 rounds of allocating and writing three 16 MiB blocks, then freeing them; the minor page faults they cost. By
# default glibc raises its mmap threshold to a freed block's size (16 MiB, so the blocks come from the heap) and its
# trim threshold to twice that: the 48 MiB freed at the heap's top goes back to the kernel every round.
PROBE = """
import json, resource, sys
import numpy as np
from harness.core import allocator
tuned = allocator.tune()
def round():
    blocks = [np.ones(2 << 20) for _ in range(3)]
    return sum(b.sum() for b in blocks)
round(); round()  # the first rounds map the pages under either setting
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    round()
print(json.dumps({"tuned": tuned, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _probe(setting: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ROBINT_MALLOC"}
    if setting is not None:
        env["ROBINT_MALLOC"] = setting
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_blocks_are_reused_not_mapped_again():
    tuned, default = _probe(None), _probe("default")
    assert tuned["tuned"] and not default["tuned"]
    # by default every round faults its memory back in (measured here: ~1000 faults per round; at least 24 even
    # where the kernel maps the heap in 2 MiB huge pages); tuned, the heap's blocks are reused
    assert default["faults"] >= 20 * 10
    assert tuned["faults"] < 100 and tuned["faults"] * 10 <= default["faults"]
