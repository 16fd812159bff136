"""Bad input: starts a plain child process and a double-forked setsid daemon (their command lines carry MARKER,
which the test writes into it), then fails; nothing it started may outlive the run"""
import os
import subprocess
import sys

from torch import nn

METADATA = {"name": "spawns_processes", "dataset": "fashion-mnist", "architecture": "linear"}
MARKER = ""
SLEEPER = "import sys, time, pathlib; time.sleep(600)"


def load_model():
    marker = MARKER
    subprocess.Popen([sys.executable, "-c", SLEEPER, marker])
    if os.fork() == 0:  # the daemon: fork, setsid, fork again, keep writing into the temporary directory
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", SLEEPER, marker, "daemon"])
        os._exit(0)
    raise RuntimeError("started a child and a daemon")
