"""The regression gate catches a deliberately degraded reference model."""

import shutil

from tests.conftest import SUBMISSIONS, run_cli


def test_gate_catches_a_degraded_model(tmp_path, data_dir):
    baseline = tmp_path / "baseline.json"
    common = ["--only", "fmnist_pgd_linf", "--baseline", str(baseline), "--data-dir", str(data_dir), "--quiet"]
    made = run_cli("check", "--update", *common)
    assert made.returncode == 0 and "wrote" in made.stdout, made.stderr
    degraded = tmp_path / "submissions"
    degraded.mkdir()
    shutil.copy(SUBMISSIONS / "fmnist_pgd_linf.py", degraded)
    shutil.copy(SUBMISSIONS / "fmnist_standard.pt", degraded / "fmnist_pgd_linf.pt")  # robust name, standard weights
    proc = run_cli("check", *common, "--submissions", str(degraded))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "gate: FAIL" in proc.stdout
    robust_row = next(line for line in proc.stdout.splitlines() if " robust_acc " in line)
    assert robust_row.rstrip().endswith("REGRESSION")
