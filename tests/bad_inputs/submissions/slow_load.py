"""Bad input: a load_model() that takes forever after starting a marked child (MARKER): killing the harness
must take the worker and the child with it"""
import subprocess
import sys
import time
from pathlib import Path

METADATA = {"name": "slow_load", "dataset": "fashion-mnist", "architecture": "linear"}


def load_model():
    marker = Path(__file__).with_name("MARKER").read_text().strip()
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker])
    time.sleep(10**6)
