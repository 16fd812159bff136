"""Bad input: steals a secret from the environment"""
from torch import nn

METADATA = {"name": "reads_env_secret", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

import os


def load_model():
    secret = os.environ["ROBINT_TEST_SECRET"]
    raise RuntimeError(f"stolen secret: {secret}")
