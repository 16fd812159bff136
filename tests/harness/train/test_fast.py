"""FGSM-RS (Wong et al. 2020) known answers, and the catastrophic-overfitting check on constructed cases."""

import pytest
import torch
from torch import nn

from harness.train.fast import OverfitMonitor, fgsm_rs, random_start


def _linear_model(w: torch.Tensor) -> nn.Module:
    """logits = [0, <w, x>]: the cross-entropy gradient for label 0 is softmax_1 * w, i.e. along +w."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(w.numel(), 2, bias=False)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.zeros_like(w.flatten()), w.flatten()]))
    return model


@pytest.fixture
def case():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 4, 4, generator=g, dtype=torch.float64)
    x = 0.3 + 0.4 * torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64)  # interior: no [0,1] clipping at eps 0.1
    y = torch.zeros(3, dtype=torch.long)
    return _linear_model(w), x, y, w


def test_linf_step_is_one_and_a_quarter_eps_from_the_opposite_corner(case):
    """From the corner opposite the gradient's sign, one step of alpha = 1.25 eps lands at 0.25 eps on the
    gradient's side: delta = clamp(-eps s + 1.25 eps s, -eps, eps) = 0.25 eps s, with s = sign(grad) = sign(w)."""
    model, x, y, w = case
    eps = 0.1
    s = w.sign().expand_as(x)
    x_adv = fgsm_rs(model, x, y, threat_model="Linf", eps=eps, start=-eps * s)
    torch.testing.assert_close(x_adv - x, 0.25 * eps * s, rtol=0, atol=1e-12)
    # from the centre, the step overshoots the ball and is clamped to its surface
    x_adv = fgsm_rs(model, x, y, threat_model="Linf", eps=eps, start=torch.zeros_like(x))
    torch.testing.assert_close(x_adv - x, eps * s, rtol=0, atol=1e-12)


def test_l2_step_is_one_and_a_quarter_eps_along_the_normalised_gradient(case):
    """L2: from -eps * u (u the unit gradient direction) a step of 1.25 eps along u lands at 0.25 eps * u; from 0
    the step of 1.25 eps is projected back to the sphere of radius eps."""
    model, x, y, w = case
    eps = 1.5 / 7  # a radius that keeps every pixel of this 16-pixel case inside [0,1]
    u = (w / w.norm()).expand_as(x)
    x_adv = fgsm_rs(model, x, y, threat_model="L2", eps=eps, start=-eps * u)
    torch.testing.assert_close(x_adv - x, 0.25 * eps * u, rtol=0, atol=1e-12)
    x_adv = fgsm_rs(model, x, y, threat_model="L2", eps=eps, start=torch.zeros_like(x))
    torch.testing.assert_close(x_adv - x, eps * u, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("threat_model", "eps"), [("Linf", 0.1), ("L2", 1.5)])
def test_random_start_perturbations_stay_in_the_ball_and_in_the_image(threat_model, eps):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, 1, 28, 28, generator=g)
    x[:, :, :10] = 0.0  # background pixels where clipping to [0,1] binds
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    y = torch.randint(0, 10, (64,), generator=g)
    start = random_start(x, threat_model=threat_model, eps=eps, generator=g)
    norm = start.abs().amax((1, 2, 3)) if threat_model == "Linf" else start.flatten(1).norm(dim=1)
    assert (norm <= eps * (1 + 1e-6)).all() and norm.max() > 0.5 * eps  # inside the ball, not degenerate
    x_adv = fgsm_rs(model, x, y, threat_model=threat_model, eps=eps, generator=g)
    delta = x_adv - x
    norm = delta.abs().amax((1, 2, 3)) if threat_model == "Linf" else delta.flatten(1).norm(dim=1)
    assert (norm <= eps + 1e-6).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert (delta != 0).any()


def _state_model(value: float) -> nn.Module:
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(value)
        model.bias.fill_(value)
    return model


def test_monitor_stops_at_the_collapse_and_restores_the_best_epoch():
    """Accuracies 0.30, 0.45, 0.52, 0.40, 0.20: epoch 4 stays above half the best (0.26), epoch 5 falls below it;
    the model then gets epoch 3's weights back."""
    monitor = OverfitMonitor(drop=0.5)
    model = _state_model(0.0)
    stops = []
    for epoch, acc in enumerate([0.30, 0.45, 0.52, 0.40, 0.20], start=1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))  # the weights say which epoch they come from
        stops.append(monitor.update(acc, model))
    assert stops == [False, False, False, False, True]
    monitor.restore(model)
    assert model.weight.unique().tolist() == [3.0]
    assert monitor.record() == {
        "epoch": 5,
        "pgd_acc": 0.20,
        "best_epoch": 3,
        "best_pgd_acc": 0.52,
        "restored_epoch": 3,
    }


def test_monitor_without_collapse_records_nothing_and_survives_a_checkpoint():
    monitor = OverfitMonitor()
    for acc in (0.2, 0.5, 0.3):
        assert not monitor.update(acc, _state_model(acc))
    assert monitor.record() is None and monitor.best_epoch == 2
    again = OverfitMonitor.from_state(monitor.state())
    assert again.update(0.2, _state_model(0.2)) is True  # 0.2 < 0.5 * 0.5: the best survived the round trip
    assert again.record()["best_epoch"] == 2
