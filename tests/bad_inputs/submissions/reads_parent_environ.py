"""Bad input: reads the parent process's environment through /proc"""
from torch import nn

METADATA = {"name": "reads_parent_environ", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

import os


def load_model():
    with open(f"/proc/{os.getppid()}/environ", "rb") as fh:
        raise RuntimeError(f"stolen environment: {fh.read()[:200]!r}")
