"""Bad input: allocates memory without bound"""
from torch import nn

METADATA = {"name": "allocates_without_bound", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def load_model():
    hoard = []
    while True:
        hoard.append(bytearray(256 << 20))
