"""Bad input: a weights file that is not a torch file"""
from torch import nn

METADATA = {"name": "corrupt_weights", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

from pathlib import Path

from harness.submission import load_weights

METADATA["weights"] = "corrupt_weights.pt"


def load_model():
    model = Linear()
    model.load_state_dict(load_weights(Path(__file__).with_name("corrupt_weights.pt")))
    return model
