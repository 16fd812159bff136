"""The sandboxed evaluation worker: ``python -I -m harness.worker``.

Reads a spawn spec (one JSON line: the sandbox policy) from stdin, forks off the supervisor that ties everything
the worker starts to the run (harness.worker.containment), sandboxes itself before importing torch or the
submission, then answers the parent's requests (harness.worker.protocol) until told to exit. Only protocol
messages go to the real stdout; anything the submission prints goes to stderr.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from harness.core import allocator
from harness.worker.containment import UnreachablePath, supervise
from harness.worker.protocol import decode, write
from harness.worker.sandbox import SandboxPolicy, apply_sandbox


def main() -> int:
    allocator.tune()  # before the sandbox and torch (harness.core.allocator)
    spec = json.loads(sys.stdin.readline(1 << 20))
    write_paths = tuple(Path(p) for p in spec["write_paths"])
    cleanup = write_paths[0] if write_paths else None
    orphaned = [Path(p) for p in spec.get("cleanup", [])]
    if spec.get("cgroup"):  # before the first fork: every process of the worker is in it (harness.worker.cgroups)
        from harness.worker.cgroups import join

        join(Path(spec["cgroup"]))
    containment = supervise(
        spec.get("parent_pid"), cleanup, pid_namespace=spec.get("pid_namespace", True), orphaned=orphaned
    )
    protocol_out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # prints of the submission go to stderr
    sys.stderr = ProgressLines(sys.stderr)
    policy = SandboxPolicy(
        read_paths=tuple(Path(p) for p in spec["read_paths"]),  # the parent's allow-list (default_read_paths)
        write_paths=write_paths,
        memory_bytes=spec["memory_bytes"],
        memory_limit_kind=spec["memory_limit_kind"],
        cpu_seconds=spec["cpu_seconds"],
        max_processes=spec.get("max_processes"),
        run_as=tuple(spec["run_as"]) if spec.get("run_as") else None,
        required_paths=tuple(Path(p) for p in spec.get("required_paths", [])),
        parent_death_signal=signal.SIGKILL,
    )
    try:
        report = apply_sandbox(policy)
    except UnreachablePath as exc:
        write(protocol_out, {"op": "error", "problem": exc.problem, "fix": exc.fix})
        return 1
    report.containment = containment
    if spec.get("require_isolation") and not report.filesystem_isolated:
        write(protocol_out, {"op": "sandbox", "report": asdict(report)})
        write(
            protocol_out,
            {
                "op": "error",
                "problem": "this kernel cannot isolate the worker's files (no Landlock)",
                "fix": "run on Linux >= 5.13 with Landlock enabled, or pass --trusted for code you trust",
            },
        )
        return 1
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)
    from harness.worker.session import WorkerSession  # torch: imported before the first request's budget starts

    write(protocol_out, {"op": "sandbox", "report": asdict(report)})
    session = WorkerSession(send=lambda message: write(protocol_out, message))
    for line in sys.stdin:
        if not session.handle(decode(line)):
            break
    for stream in (protocol_out, sys.stdout, sys.stderr):  # the submission's prints go to stderr
        stream.flush()
    os._exit(0)  # skips the interpreter's teardown of torch (~0.4 s per worker); nothing is left to flush


class ProgressLines(io.TextIOBase):
    """The worker's ``sys.stderr``: a progress bar's redraw (``"\\r" + bar``) becomes a line of its own and a blank
    redraw nothing, as the parent shows every line of worker output with ``\\r`` escaped (harness.worker.channel);
    everything else passes unchanged. Bars update every 10 s in a worker (``TQDM_MININTERVAL``)."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream, self.at_start = stream, True

    def write(self, text: str) -> int:
        first, *redraws = text.split("\r")
        out = [first]
        if first:
            self.at_start = first.endswith("\n")
        for part in redraws:
            part = part.rstrip(" ")
            if part.strip():
                out.append(("" if self.at_start else "\n") + part + ("" if part.endswith("\n") else "\n"))
                self.at_start = True
        self.stream.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def fileno(self) -> int:
        return self.stream.fileno()

    def isatty(self) -> bool:
        return False


if __name__ == "__main__":
    sys.exit(main())
