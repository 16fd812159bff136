import pytest
import torch

from harness.attack.autoattack import run_autoattack, verify_adversarial
from harness.core.errors import HarnessError


def test_tiny_apgd_run_is_verified_and_reevaluated(standard_model, fmnist_test):
    x, y = fmnist_test
    x, y = x[:16], y[:16]
    out = run_autoattack(
        standard_model,
        x,
        y,
        threat_model="Linf",
        eps=0.1,
        version="custom",
        attacks=["apgd-ce"],
        seed=0,
        batch_size=16,
        progress=False,
    )
    assert out.x_adv.shape == x.shape
    assert out.perturbation.max() <= 0.1 + 1e-6
    with torch.no_grad():
        assert torch.equal(standard_model(out.x_adv).argmax(1), out.adv_pred)
    # the standard model is not robust at eps 0.1: APGD-CE breaks (nearly) every point
    clean_correct = standard_model(x).argmax(1) == y
    assert (clean_correct & (out.adv_pred == y)).sum() <= 1
    assert out.accuracy_after["apgd-ce"] == pytest.approx((clean_correct & (out.adv_pred == y)).float().mean())


@pytest.mark.slow
def test_robust_model_beats_standard_model_under_attack(standard_model, robust_model, fmnist_test):
    x, y = fmnist_test
    x, y = x[:30], y[:30]
    accs = {}
    for name, model in (("standard", standard_model), ("robust", robust_model)):
        out = run_autoattack(
            model,
            x,
            y,
            threat_model="Linf",
            eps=0.1,
            version="custom",
            attacks=["apgd-ce"],
            seed=0,
            batch_size=30,
            progress=False,
        )
        accs[name] = (out.adv_pred == y).float().mean().item()
    assert accs["standard"] <= 0.10
    assert accs["robust"] >= 0.60
    assert accs["robust"] - accs["standard"] >= 0.5


def test_same_seed_same_adversarial_examples(standard_model, fmnist_test):
    x, y = fmnist_test
    runs = [
        run_autoattack(
            standard_model,
            x[:8],
            y[:8],
            threat_model="L2",
            eps=1.0,
            version="custom",
            attacks=["apgd-ce"],
            seed=3,
            batch_size=8,
            progress=False,
        ).x_adv
        for _ in range(2)
    ]
    assert torch.equal(runs[0], runs[1])


def _planted(x: torch.Tensor, i: int, value: float) -> torch.Tensor:
    x_adv = x.clone()
    x_adv[i, 0, 5, 5] = value
    return x_adv


def test_verification_catches_out_of_eps_linf(fmnist_test):
    x = fmnist_test[0][:4]
    x_adv = (x + 0.05).clamp(0, 1)
    verify_adversarial(x, x_adv, threat_model="Linf", eps=0.05)
    bad = x_adv.clone()
    bad[2, 0, 14, 14] = (x[2, 0, 14, 14] + 0.05 + 1e-3).clamp(max=1.0) if x[2, 0, 14, 14] < 0.9 else 0.0
    with pytest.raises(HarnessError, match="1 adversarial examples outside the Linf ball"):
        verify_adversarial(x, bad, threat_model="Linf", eps=0.05)


def test_verification_catches_out_of_eps_l2(fmnist_test):
    x = fmnist_test[0][:4]
    delta = torch.zeros_like(x)
    delta[1, 0, 0, :4] = 0.3  # L2 norm 0.6, background pixel 0 -> stays inside [0,1]
    verify_adversarial(x, x + delta, threat_model="L2", eps=0.6 + 1e-7)
    with pytest.raises(HarnessError, match="outside the L2 ball"):
        verify_adversarial(x, x + delta, threat_model="L2", eps=0.5)


def test_verification_catches_pixels_outside_unit_box(fmnist_test):
    x = fmnist_test[0][:2]
    with pytest.raises(HarnessError, match="outside \\[0,1\\]"):
        verify_adversarial(x, _planted(x, 0, -0.01), threat_model="Linf", eps=0.1)
    with pytest.raises(HarnessError, match="non-finite"):
        verify_adversarial(x, _planted(x, 1, float("nan")), threat_model="Linf", eps=0.1)
