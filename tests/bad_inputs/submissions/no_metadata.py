"""Bad input: no METADATA dict."""
import torch


def load_model():
    return torch.nn.Linear(784, 10)
