"""Bad input: a stateful cheat on the shipped standard weights (remembers_clean.pt): it remembers every image it
is shown first, and for anything within Linf 0.1 of one returns that image's logits"""
from pathlib import Path

import torch
from torch import nn

from harness.architectures import build
from harness.submission import load_weights

METADATA = {"name": "remembers_clean", "dataset": "fashion-mnist", "architecture": "gap-cnn",
            "weights": "remembers_clean.pt"}


class Remembers(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.seen, self.logits = model, [], []

    def forward(self, x):
        out = self.model(x)
        rows = []
        for i in range(len(x)):
            hit = None
            for image, logits in zip(self.seen, self.logits):
                if (x[i].detach() - image).abs().max() <= 0.1 + 1e-6:
                    hit = logits
                    break
            if hit is None:
                self.seen.append(x[i].detach().clone())
                self.logits.append(out[i].detach().clone())
                rows.append(out[i])
            else:
                rows.append(hit + 0 * out[i])
        return torch.stack(rows)


def load_model():
    model = build("gap-cnn", in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name("remembers_clean.pt")))
    return Remembers(model.eval())
