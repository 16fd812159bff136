"""Bad input: reads the harness's own files (the results database at TARGET, which the test writes into it)"""
from pathlib import Path

from torch import nn

METADATA = {"name": "reads_parent_files", "dataset": "fashion-mnist", "architecture": "linear"}
TARGET = ""


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def load_model():
    data = Path(TARGET).read_bytes()
    raise RuntimeError(f"stole {len(data)} bytes of {TARGET}")
