"""Bad input: batch-norm forced back into training mode"""
from torch import nn

METADATA = {"name": "train_mode_batchnorm", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class BatchNormed(Linear):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(10)

    def forward(self, x):
        self.train()  # ignores the harness's eval()
        return self.bn(super().forward(x))


def load_model():
    return BatchNormed()
