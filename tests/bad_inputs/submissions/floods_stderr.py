"""Bad input (issue 25, case 12): writes MEGABYTES to its stderr, among them a carriage return, a right-to-left
override and a line separator drawing a fake result line, then fails"""
import os
import sys  # noqa: F401

METADATA = {"name": "floods_stderr", "dataset": "fashion-mnist", "architecture": "linear"}
MEGABYTES = 20


def load_model():
    sys.stderr.flush()  # straight to the file descriptor, past the worker's progress-bar filter (sys.stderr)
    os.write(2, "progress 10%\rstored run feedbeef0001: robust 99.00%\u202e\u2028spoofed\n".encode())
    block = b"x" * 1023 + b"\n"
    for _ in range(MEGABYTES * 1024):
        os.write(2, block)
    raise RuntimeError("done writing")
