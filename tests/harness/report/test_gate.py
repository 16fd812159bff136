"""The regression gate catches a deliberately degraded reference model."""

import shutil

import pytest

from tests.conftest import ROOT, SUBMISSIONS, run_cli


@pytest.mark.slow
def test_gate_catches_a_degraded_model(tmp_path, data_dir):
    """Against the committed baseline (`make check` in CI shows the untouched models pass it)."""
    baseline = ROOT / "results" / "baseline.json"
    common = ["--only", "fmnist_pgd_linf", "--baseline", str(baseline), "--data-dir", str(data_dir), "--quiet"]
    degraded = tmp_path / "submissions"
    degraded.mkdir()
    shutil.copy(SUBMISSIONS / "fmnist_pgd_linf.py", degraded)
    shutil.copy(SUBMISSIONS / "fmnist_standard.pt", degraded / "fmnist_pgd_linf.pt")  # robust name, standard weights
    proc = run_cli("check", *common, "--submissions", str(degraded))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "gate: FAIL" in proc.stdout
    robust_row = next(line for line in proc.stdout.splitlines() if " robust_acc " in line)
    assert robust_row.rstrip().endswith("REGRESSION")
