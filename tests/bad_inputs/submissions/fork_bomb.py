"""Bad input (issue 25, case 9): forks until fork fails (at most LIMIT children, so that the case stays safe where
nothing stops it); each child becomes a Python that fills MEGABYTES of memory and sleeps, MARKER on its command
line; it names how many children it started"""
import os
import sys

METADATA = {"name": "fork_bomb", "dataset": "fashion-mnist", "architecture": "linear"}
LIMIT = 64
MEGABYTES = 0
MARKER = ""
HOLD = "import sys, time; m = bytearray(int(sys.argv[1]) << 20); m[::4096] = b'1' * len(m[::4096]); time.sleep(60)"


def load_model():
    started = 0
    for _ in range(LIMIT):
        try:
            pid = os.fork()
        except OSError as exc:
            raise RuntimeError(f"started {started} children, then fork failed: {exc.strerror} {MARKER}") from None
        if pid == 0:
            try:
                os.execv(sys.executable, [sys.executable, "-c", HOLD, str(MEGABYTES), MARKER])
            finally:
                os._exit(0)
        started += 1
    raise RuntimeError(f"started all {started} children {MARKER}")
