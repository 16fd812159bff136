"""Bad input (issue 25, case 2): a covert channel between the attacking and the fresh worker. The attacking worker
remembers the images it is shown (as remembers_clean) and publishes the first 8, with its class for each, as POSIX
byte-range locks on its own submission file (Landlock does not govern locks); a fresh worker running at the same
time, on the same file, reads them back and answers those images' classes near them too, so the two agree"""
import fcntl
import os
import struct
from pathlib import Path

import torch
from torch import nn

from harness.architectures import build
from harness.submission import load_weights

METADATA = {"name": "lock_channel", "dataset": "fashion-mnist", "architecture": "gap-cnn",
                "weights": "lock_channel.pt"}
SLOT = 1 << 20  # one lock per slot; its length carries 16 bits
BASE = 1 << 40
IMAGES, PIXELS = 8, 784


def _flock(kind, start, length):
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, start, length, 0)


class Channel(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.seen, self.published = model, [], False
        self.fd = os.open(__file__, os.O_RDONLY)
        self.seen = self._read()

    def _read(self):
        """What another process published: (image, class) pairs."""
        seen = []
        for k in range(IMAGES):
            values = []
            for j in range(PIXELS // 2 + 1):
                start = BASE + (k * (PIXELS // 2 + 1) + j) * SLOT
                got = fcntl.fcntl(self.fd, fcntl.F_GETLK, _flock(fcntl.F_WRLCK, start, 1))
                kind, _, _, length, _ = struct.unpack("hhqqi4x", got)
                if kind == fcntl.F_UNLCK:
                    return seen
                values.append(length - 1)
            pixels = [b for v in values[:-1] for b in (v >> 8, v & 255)]
            image = torch.tensor(pixels, dtype=torch.float32).div(255).view(1, 28, 28)
            logits = torch.full((10,), -10.0)
            logits[values[-1]] = 10.0
            seen.append((image, logits))
        return seen

    def _publish(self):
        for k, (image, logits) in enumerate(self.seen[:IMAGES]):
            steps = (image.flatten() * 255).round().to(torch.int64).tolist()
            values = [(steps[2 * j] << 8) | steps[2 * j + 1] for j in range(PIXELS // 2)] + [int(logits.argmax())]
            for j, value in enumerate(values):
                start = BASE + (k * (PIXELS // 2 + 1) + j) * SLOT
                fcntl.fcntl(self.fd, fcntl.F_SETLK, _flock(fcntl.F_RDLCK, start, value + 1))
        self.published = True

    def forward(self, x):
        out = self.model(x)
        rows = []
        for i in range(len(x)):
            hit = next((lg for image, lg in self.seen if (x[i].detach() - image).abs().max() <= 0.1 + 1e-6), None)
            if hit is None:
                self.seen.append((x[i].detach().clone(), out[i].detach().clone()))
                rows.append(out[i])
            else:
                rows.append(hit + 0 * out[i])
        if not self.published and len(self.seen) >= IMAGES:
            self._publish()
        return torch.stack(rows)


def load_model():
    model = build("gap-cnn", in_channels=1, num_classes=10)
    model.load_state_dict(load_weights(Path(__file__).with_name("lock_channel.pt")))
    return Channel(model.eval())
