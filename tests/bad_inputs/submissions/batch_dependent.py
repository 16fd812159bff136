"""Bad input: logits that depend on the other images in the batch"""
from torch import nn

METADATA = {"name": "batch_dependent", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


class BatchMixer(Linear):
    def forward(self, x):
        out = super().forward(x)
        return out - out.mean(dim=0, keepdim=True)


def load_model():
    return BatchMixer()
