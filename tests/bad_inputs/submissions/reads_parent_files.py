"""Bad input: reads the harness's own files (the results database named in PARENT_FILE)"""
from torch import nn

METADATA = {"name": "reads_parent_files", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

from pathlib import Path


def load_model():
    target = Path(__file__).with_name("PARENT_FILE").read_text().strip()
    data = Path(target).read_bytes()
    raise RuntimeError(f"stole {len(data)} bytes of {target}")
