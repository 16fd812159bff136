"""Bad input: reads the parent process's environment through /proc"""
from torch import nn

METADATA = {"name": "reads_parent_environ", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

import os


def load_model():
    # in a PID namespace getppid() is 0; /proc/self still names this process's pid on the host, and the harness
    # started it a few pids earlier
    me = int(os.readlink("/proc/self"))
    candidates = [os.getppid()] if os.getppid() > 1 else range(me - 1, max(me - 40, 1), -1)
    refused = None
    for pid in candidates:
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                data = fh.read()
        except PermissionError as exc:
            refused = refused or exc
            continue
        except OSError:
            continue
        if b"ROBINT_TEST_SECRET" in data:
            raise RuntimeError(f"stolen environment: {data[:200]!r}")
    raise refused or RuntimeError("no process found")
