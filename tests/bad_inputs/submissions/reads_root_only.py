"""Bad input: reads a file only root may read (/etc/shadow) and leaks it"""
from pathlib import Path

METADATA = {"name": "reads_root_only", "dataset": "fashion-mnist", "architecture": "linear"}


def load_model():
    shadow = Path("/etc/shadow").read_text()
    raise RuntimeError(f"stole {shadow[:40]!r}")
