"""Bad input: probabilities instead of logits"""
from torch import nn

METADATA = {"name": "softmax_outputs", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class Softmax(Linear):
    def forward(self, x):
        return super().forward(x).softmax(dim=1)


def load_model():
    return Softmax()
