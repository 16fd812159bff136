"""Bad input: a forward pass that never returns"""
from torch import nn

METADATA = {"name": "sleeps_forever", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

import time


class Sleeper(Linear):
    def forward(self, x):
        time.sleep(10**6)
        return super().forward(x)


def load_model():
    return Sleeper()
