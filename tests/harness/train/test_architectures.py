"""The reference architectures' fast max-pool against PyTorch's, and the shipped network's outputs with it."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.train.architectures import MaxPool2x2, build


def _activations(shape: tuple[int, ...]) -> torch.Tensor:
    """ReLU outputs with the ties a flat image region gives (equal positive values in a window), zeros and a NaN."""
    x = torch.relu(torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    x[..., :4, :4] = 0.5
    x.view(-1)[7] = float("nan")
    return x


@pytest.mark.parametrize("shape", [(4, 3, 28, 28), (2, 5, 7, 9), (3, 6, 6)])
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode", "plain tensor"])
def test_fast_path_equals_pytorchs_max_pool_bit_for_bit(shape, mode):
    x = _activations(shape)
    context = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode, "plain tensor": torch.enable_grad}
    with context[mode]():
        fast = MaxPool2x2()(x)
    assert torch.equal(fast.isnan(), F.max_pool2d(x, 2).isnan())
    assert torch.equal(fast.nan_to_num(), F.max_pool2d(x, 2).nan_to_num())  # odd sizes: the last row/column dropped


def test_gradients_are_pytorchs_own():
    """Ties go to each window's first maximum, as nn.MaxPool2d sends them."""
    x = _activations((2, 3, 8, 8)).nan_to_num()
    mine, theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    g = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    MaxPool2x2()(mine).backward(g)
    nn.MaxPool2d(2)(theirs).backward(g)
    assert torch.equal(mine.grad, theirs.grad)
    assert int((mine.grad[..., :4, :4] != 0).sum()) == 2 * 3 * 4  # one of each tied window's four


def test_the_shipped_network_gives_the_same_logits_and_gradients(fmnist_test):
    torch.manual_seed(0)
    model = build("gap-cnn", in_channels=1, num_classes=10).eval()
    reference = build("gap-cnn", in_channels=1, num_classes=10).eval()
    reference.load_state_dict(model.state_dict())
    for i, layer in enumerate(reference.features):
        if isinstance(layer, MaxPool2x2):
            reference.features[i] = nn.MaxPool2d(2)
    x = fmnist_test[0][:16]
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    model(a).sum().backward()
    reference(b).sum().backward()
    assert torch.equal(a.grad, b.grad)
