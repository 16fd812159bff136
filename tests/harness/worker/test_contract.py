"""The submission contract on the smallest run (``--n-examples 1``): one test image still gets every check, and
a model that cannot take an empty batch (most real architectures) is never sent one."""

import pytest
import torch
from torch import nn

from harness.core.errors import HarnessError
from harness.worker.contract import check_contract


class NoEmptyBatch(nn.Module):
    """A linear classifier whose forward fails on an empty batch, as PreAct ResNet's ``view(len(x), -1)`` does."""

    def __init__(self, mix: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.mix = nn.Linear(4, 3), mix

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if len(x) == 0:
            raise RuntimeError("cannot reshape tensor of 0 elements")
        out = self.fc(x.reshape(len(x), -1))
        return out - out.mean(0, keepdim=True) if self.mix else out


@pytest.mark.parametrize("n", [1, 2, 5])
def test_a_model_without_empty_batches_passes_on_any_number_of_images(n):
    x = torch.rand(n, 1, 2, 2, generator=torch.Generator().manual_seed(n))
    assert check_contract(NoEmptyBatch().eval(), x, num_classes=3, device=torch.device("cpu")) == []


@pytest.mark.parametrize("n", [1, 4])
def test_batch_dependence_is_caught_even_with_one_image(n):
    x = torch.rand(n, 1, 2, 2, generator=torch.Generator().manual_seed(n))
    with pytest.raises(HarnessError, match="batch independence"):
        check_contract(NoEmptyBatch(mix=True).eval(), x, num_classes=3, device=torch.device("cpu"))
