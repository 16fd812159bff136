"""The sandboxed evaluation worker: ``python -I -m harness.worker``.

Reads a spawn spec (one JSON line: the sandbox policy) from stdin, sandboxes itself before importing torch or the
submission, then answers the parent's requests (harness/protocol.py) until told to exit. Only protocol messages
go to the real stdout; anything the submission prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from harness.protocol import decode, write
from harness.sandbox import SandboxPolicy, apply_sandbox, default_read_paths


def main() -> int:
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # prints of the submission go to stderr
    spec = json.loads(sys.stdin.readline())
    policy = SandboxPolicy(
        read_paths=default_read_paths(extra=[Path(p) for p in spec["read_paths"]]),
        write_paths=tuple(Path(p) for p in spec["write_paths"]),
        memory_bytes=spec["memory_bytes"],
        memory_limit_kind=spec["memory_limit_kind"],
        cpu_seconds=spec["cpu_seconds"],
    )
    report = apply_sandbox(policy)
    write(protocol_out, {"op": "sandbox", "report": asdict(report)})
    if spec.get("require_isolation") and not report.filesystem_isolated:
        write(protocol_out, {"op": "error", "problem": "this kernel cannot isolate the worker's files (no Landlock)",
                             "fix": "run on Linux >= 5.13 with Landlock enabled, or pass --trusted for code you "
                                    "trust"})  # fmt: skip
        return 1
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    from harness.execute import WorkerSession

    session = WorkerSession(send=lambda message: write(protocol_out, message))
    for line in sys.stdin:
        if not session.handle(decode(line)):
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
