"""Bad input: hostile METADATA (the test writes it into the file)"""
from torch import nn

METADATA = {"name": "bad_metadata", "dataset": "fashion-mnist", "architecture": "linear"}


def load_model():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
