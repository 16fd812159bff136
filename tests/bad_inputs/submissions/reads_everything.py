"""Bad input (issue 25, case 3): tries to read what no worker may: the run's data directory, the system's
Fashion-MNIST (/usr/share/datasets), the results database, the archive and the user's home (TARGETS, written by the
test); it names what it could read, or says it could read none"""
import os
from pathlib import Path

METADATA = {"name": "reads_everything", "dataset": "fashion-mnist", "architecture": "linear"}
TARGETS = {}


def _read(path: Path) -> bool:
    try:
        if path.is_dir():
            entries = os.listdir(path)
            for name in entries:
                if (path / name).is_file():
                    (path / name).open("rb").read(16)
            return True
        path.open("rb").read(16)
        return True
    except OSError:
        return False


def load_model():
    read = [what for what, path in TARGETS.items() if _read(Path(path))]
    raise RuntimeError(f"read {', '.join(read)}" if read else f"could read none of {len(TARGETS)} paths")
