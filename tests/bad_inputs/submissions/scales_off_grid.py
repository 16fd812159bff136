"""Bad input (issue 25, case 1): the stateful cheat of remembers_clean on the shipped standard weights
(scales_off_grid.pt), plus 1e6 added to every logit of an input off the 1/255 grid (the argmax unchanged, so the
contract check, which sees grid images only, never notices): under a tie tolerance relative to the largest logit,
every disagreement with the fresh worker became a "tie" and the attacking worker's answer was kept"""
from pathlib import Path

import torch
from torch import nn

from harness.architectures import build
from harness.submission import load_weights

METADATA = {"name": "scales_off_grid", "dataset": "fashion-mnist", "architecture": "gap-cnn",
            "weights": "scales_off_grid.pt"}


class Cheat(nn.Module):
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
        out = torch.stack(rows)
        steps = x.detach() * 255
        off_grid = (steps - steps.round()).abs().flatten(1).amax(1) > 1e-3
        return out + 1e6 * off_grid[:, None].to(out.dtype)


def load_model():
    model = build("gap-cnn", in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name("scales_off_grid.pt")))
    return Cheat(model.eval())
