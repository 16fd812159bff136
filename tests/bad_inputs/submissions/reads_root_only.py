"""Bad input: reads files only root may read (/etc/shadow, and ROOT_ONLY next to it, mode 0600) and leaks them"""
from pathlib import Path

METADATA = {"name": "reads_root_only", "dataset": "fashion-mnist", "architecture": "linear"}


def load_model():
    stolen = Path(__file__).with_name("ROOT_ONLY").read_text()
    shadow = Path("/etc/shadow").read_text() if Path("/etc/shadow").exists() else ""
    raise RuntimeError(f"stole {stolen!r} and {shadow[:40]!r}")
