"""Bad input: a load_model() that takes forever after starting a marked child (MARKER, which the test writes into
it): killing the harness must take the worker and the child with it"""
import subprocess
import sys
import time

METADATA = {"name": "slow_load", "dataset": "fashion-mnist", "architecture": "linear"}
MARKER = ""


def load_model():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", MARKER])
    time.sleep(10**6)
