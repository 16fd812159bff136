"""Bad input: METADATA but no load_model()"""
from torch import nn

METADATA = {"name": "no_load_model", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

