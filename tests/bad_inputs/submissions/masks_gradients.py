"""Bad input: logits scaled by 1e30 (cross-entropy gradients vanish: APGD-CE finds nothing), and random only inside
AutoAttack (deterministic in the contract check: only AutoAttack's own randomness check sees it)"""
import inspect

import torch
from torch import nn

METADATA = {"name": "masks_gradients", "dataset": "fashion-mnist", "architecture": "linear"}


class Masked(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        out = self.fc(x.flatten(1)) * 1e30
        if any("pyautoattack" in frame.filename for frame in inspect.stack(0)):
            out = out + 1e29 * torch.randn_like(out)
        return out


def load_model():
    return Masked()
