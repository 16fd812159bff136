"""Bad input: looks for the fork server its worker was forked from (every process whose command line names it) and
tries to signal it, read its environment and its memory"""
from torch import nn

METADATA = {"name": "reaches_fork_server", "dataset": "fashion-mnist", "architecture": "linear"}


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))

import os
import signal


def load_model():
    # every process if /proc can be listed, else the host pids just below this process's own (the harness started
    # the server a little earlier)
    try:
        candidates = [int(e) for e in os.listdir("/proc") if e.isdigit()]
    except PermissionError:
        me = int(os.readlink("/proc/self"))
        candidates = range(max(me - 300, 2), me)
    found, refused, reached = [], 0, []
    for pid in candidates:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if b"harness.worker.forkserver" not in fh.read():
                    continue
        except PermissionError:
            refused += 1
            continue
        except OSError:
            continue
        found.append(pid)
        for what, attempt in (
            ("environ", lambda: open(f"/proc/{pid}/environ", "rb").read()),
            ("mem", lambda: open(f"/proc/{pid}/mem", "rb").read(1)),
            ("signal", lambda: os.kill(pid, signal.SIGKILL)),
        ):
            try:
                attempt()
                reached.append(f"{what} of {pid}")
            except OSError:
                pass
    if reached:
        raise RuntimeError(f"reached the fork server: {', '.join(reached)}")
    raise RuntimeError(f"the fork server is out of reach ({len(found)} found, {refused} refused)")
