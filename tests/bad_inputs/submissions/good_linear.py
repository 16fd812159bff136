"""A valid (if weak) submission: used for the option and database cases of the bad-input corpus."""
import torch
from torch import nn

METADATA = {"name": "good_linear", "dataset": "fashion-mnist", "architecture": "linear"}


def load_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
