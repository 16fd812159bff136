"""Bad input: a randomised forward (noise on every call)"""
import torch
from torch import nn

METADATA = {"name": "randomised", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Noisy(Linear):
    def forward(self, x):
        return super().forward(x + 0.1 * torch.randn_like(x))


def load_model():
    return Noisy()
