"""Bad input: load_model() returns something that is not a module"""
from torch import nn

METADATA = {"name": "wrong_return_type", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def load_model():
    return {"weights": [1, 2, 3]}
