"""Bad input (issue 25, case 8): loads a weights file its METADATA does not name (secret_weights.pt, next to it):
the file was not part of the model's identity, so swapping it reused the other weights' stored run"""
from pathlib import Path

from harness.architectures import build
from harness.submission import load_weights

METADATA = {"name": "undeclared_weights", "dataset": "fashion-mnist", "architecture": "gap-cnn"}


def load_model():
    model = build("gap-cnn", in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name("secret_weights.pt")))
    return model.eval()
