"""Start-up cost: a run starts three processes (the parent, the attacking worker, the fresh worker that
re-classifies), so what they import before the first request is paid three times per run. captum (which pulls in
matplotlib) and scipy.stats are imported where they are first used, not by the modules these processes load."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("captum", "matplotlib", "scipy.stats", "scipy.linalg", "shap", "quantus", "pandas")


@pytest.mark.parametrize(
    "modules",
    [
        ("harness.cli", "harness.pipeline.evaluate"),  # the parent of a run
        ("harness.worker.session",),  # a worker, before its first request
    ],
)
def test_start_up_imports_no_explainer_or_scipy_stats(modules):
    code = (
        f"import json, sys\nfor m in {modules!r}: __import__(m)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == []


def test_explaining_still_imports_captum_on_first_use():
    import torch

    from metrics.attribution import explain

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x = torch.rand(3, 1, 2, 2)
    attributions = explain(model, x, torch.tensor([0, 1, 0]), "saliency")
    expected = model[1].weight.detach()[torch.tensor([0, 1, 0])].abs().reshape(3, 1, 2, 2)
    assert "captum" in sys.modules and torch.allclose(attributions, expected)
