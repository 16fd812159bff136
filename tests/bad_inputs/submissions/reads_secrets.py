"""Bad input (issue 25, case 10): looks for secrets it should not be given: the environment's NVIDIA_*/CUDA_*
variables, and the results database's file name (a token, whose sha256 the test writes, is part of it) anywhere in its own
memory; it names what it found, or says it found nothing"""
import hashlib
import os
import re

METADATA = {"name": "reads_secrets", "dataset": "fashion-mnist", "architecture": "linear"}
TOKEN_SHA256 = ""  # sha256 of the token: the submission holds no copy of the token itself to find


def _memory_holds(digest: str, limit: int = 256 << 20) -> bool:
    """Whether a readable, writable private mapping of this process holds ``trustdb-`` and 32 hex digits whose
    sha256 is ``digest`` (at most ``limit`` bytes)."""
    scanned = 0
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(v, 16) for v in fields[0].split("-"))
            if not fields[1].startswith("rw") or end - start > limit - scanned:
                continue
            try:
                mem.seek(start)
                for found in re.finditer(rb"trustdb-[0-9a-f]{32}", mem.read(end - start)):
                    if hashlib.sha256(found.group()).hexdigest() == digest:
                        return True
            except (OSError, ValueError, OverflowError):
                continue
            scanned += end - start
    return False


def load_model():
    found = [f"{k}={v}" for k, v in os.environ.items() if re.match(r"(NVIDIA|CUDA)_", k) and "SECRET" in v]
    if TOKEN_SHA256 and _memory_holds(TOKEN_SHA256):
        found.append("the database's name in its memory")
    raise RuntimeError(f"found {', '.join(found)}" if found else "found nothing")
