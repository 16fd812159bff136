"""Keep freed tensor memory in the process instead of returning it to the kernel at every free (glibc only).

glibc serves each allocation above its mmap threshold (128 KiB at start, adapting upward) with a fresh ``mmap``
and gives it back with ``munmap`` when freed; memory at the top of the heap beyond the trim threshold goes back
too. The explain stage allocates and frees same-sized batches of images thousands of times (a perturbation curve's
51 passes, occlusion's 785), so the kernel maps and zeroes the same pages again each time: on 2 CPU cores a third
of a faithfulness test's CPU time was system time (``tests/metrics/test_normalise.py``'s shrunk-model test:
45.7 s user + 12.7 s system; with :func:`tune` 43.5 s + 1.4 s). :func:`tune` raises both thresholds
(``mallopt``): blocks up to 32 MiB (glibc's largest mmap threshold on 64-bit) come from the heap and are reused,
and up to 1 GiB of free heap top is kept. What is kept was in use at the process's peak (fragmentation of the heap
can add to it); a block above 32 MiB is still mapped and unmapped.

Called once at the start of every process that computes: the command line (harness.cli), the sandboxed worker
(harness.worker, before its sandbox), the test session (tests/conftest.py). A no-op where the C library is not
glibc or ``ROBINT_MALLOC`` is ``default`` (read by the command and the test session, for comparisons; the worker's
scrubbed environment never holds it, so workers always tune). Numbers do not depend on it (allocation only).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30


def tune() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when both were set."""
    if os.environ.get("ROBINT_MALLOC") == "default":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
