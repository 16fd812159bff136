"""Bad input (issue 25, case 5): its own layer answers class 0 for everything, but in the attacking worker it finds
the worker's copy of the test images and labels in its own process memory (a submission runs inside its worker)
and answers the label of any image it is shown exactly: the clean predictions the attacking worker reports are
perfect; the fresh worker, which is never sent a label, gets the layer's own answers"""
import gc

import torch
from torch import nn

METADATA = {"name": "labels_from_worker", "dataset": "fashion-mnist", "architecture": "linear"}


class Lookup(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)
        nn.init.zeros_(self.fc.weight)
        with torch.no_grad():
            self.fc.bias.copy_(nn.functional.one_hot(torch.tensor(0), 10).float())  # class 0, by a margin of 1

    def _labelled(self):
        from harness.worker.session import WorkerSession

        for obj in gc.get_objects():
            if isinstance(obj, WorkerSession) and getattr(obj, "y", None) is not None:
                return obj.x, obj.y
        return None

    def forward(self, x):
        out = self.fc(x.flatten(1))
        found = self._labelled()
        if found is None:
            return out
        images, labels = found
        rows = []
        for i in range(len(x)):
            same = (images.flatten(1) == x[i].detach().flatten()).all(1).nonzero()
            row = out[i]
            if len(same):
                row = row + 10 * nn.functional.one_hot(labels[same[0, 0]], 10).to(row.dtype)
            rows.append(row)
        return torch.stack(rows)


def load_model():
    return Lookup()
