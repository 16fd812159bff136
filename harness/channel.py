"""The parent's side of the conversation with a worker: a sandboxed subprocess, or in-process with --trusted."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.protocol import TERMINAL, decode, encode

OnMessage = Callable[[dict[str, Any]], None]

_SIGNALS = {
    signal.SIGKILL: "it was killed (SIGKILL: out of memory, or killed by the system)",
    signal.SIGXCPU: "it exceeded its CPU-time limit (--cpu-limit)",
    signal.SIGSEGV: "it crashed (SIGSEGV; often the memory limit hit inside native code: try --memory-limit)",
    signal.SIGABRT: "it aborted (SIGABRT)",
    signal.SIGSYS: "it made a forbidden system call (SIGSYS)",
}


class InProcessChannel:
    """``--trusted``: the worker session runs in this process (for debugging your own code)."""

    def __init__(self) -> None:
        from harness.execute import WorkerSession

        self._messages: list[dict[str, Any]] = []
        self.session = WorkerSession(send=self._messages.append)
        self.sandbox_report: dict[str, Any] = {"trusted": True}

    def request(self, message: dict[str, Any], on_message: OnMessage | None = None) -> dict[str, Any]:
        self._messages.clear()

        def send(reply: dict[str, Any]) -> None:
            if reply["op"] not in TERMINAL and reply["op"] != "heartbeat" and on_message is not None:
                on_message(reply)
            elif reply["op"] in TERMINAL:
                self._messages.append(reply)

        self.session.send = send
        self.session.handle(message)
        return _terminal(self._messages[-1]) if self._messages else {"op": "bye"}

    def close(self) -> None:
        pass


class SubprocessChannel:
    """A sandboxed worker process; kills it on stalls, timeouts and exit."""

    def __init__(self, *, read_paths: list[Path], memory_bytes: int | None, memory_limit_kind: str,
                 cpu_seconds: int | None, stall_timeout: float, timeout: float | None,
                 progress: bool) -> None:  # fmt: skip
        from harness.sandbox import scrubbed_env

        self.tmp = Path(tempfile.mkdtemp(prefix="robint-worker-"))
        self.stall_timeout, self.progress = stall_timeout, progress
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "harness.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=self.tmp, env=scrubbed_env(self.tmp), start_new_session=True, close_fds=True,
            text=True, bufsize=1,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_tail: deque[str] = deque(maxlen=64)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        spec = {"read_paths": [str(p) for p in read_paths], "write_paths": [str(self.tmp)],
                "memory_bytes": memory_bytes, "memory_limit_kind": memory_limit_kind, "cpu_seconds": cpu_seconds,
                "require_isolation": True}  # fmt: skip
        self._write(spec)
        reply = self._next()
        if reply["op"] == "error":
            self.close()
            _terminal(reply)
        self.sandbox_report = reply.get("report", {})

    def request(self, message: dict[str, Any], on_message: OnMessage | None = None) -> dict[str, Any]:
        self._write(message)
        while True:
            reply = self._next()
            if reply["op"] in TERMINAL:
                return _terminal(reply)
            if reply["op"] != "heartbeat" and on_message is not None:
                on_message(reply)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._write({"op": "exit"})
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        self._kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _write(self, message: dict[str, Any]) -> None:
        try:
            self.proc.stdin.write(encode(message) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._died()

    def _next(self) -> dict[str, Any]:
        wait = self.stall_timeout
        if self.deadline is not None:
            wait = min(wait, max(0.0, self.deadline - time.monotonic()))
        try:
            line = self.lines.get(timeout=wait)
        except queue.Empty:
            self._kill()
            if self.deadline is not None and time.monotonic() >= self.deadline:
                raise HarnessError("the evaluation exceeded its wall-clock limit (--timeout) and was stopped",
                                   "raise --timeout, or reduce --n-examples") from None  # fmt: skip
            raise HarnessError(
                f"the model made no progress for {self.stall_timeout:g} s (a forward pass that never returns?) and "
                "was stopped", "fix the model, or raise --stall-timeout if it is just slow",
            ) from None  # fmt: skip
        if line is None:
            self._died()
        try:
            return decode(line)
        except ValueError:
            self._kill()
            raise HarnessError("the worker wrote something that is not a protocol message to its output",
                               "do not write to file descriptor 1 from native code") from None  # fmt: skip

    def _died(self) -> None:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            code = self.proc.returncode
        text = "".join(self.stderr_tail)
        tail = text.strip().splitlines()[-1:] or [""]
        if re.search(r"cannot allocate memory|out of memory|MemoryError|bad_alloc", text, re.IGNORECASE):
            raise HarnessError("the evaluation worker ran out of memory (its memory limit) and stopped",
                               "raise --memory-limit, or reduce --batch-size")  # fmt: skip
        reason = _SIGNALS.get(-code, f"it was killed by signal {-code}") if code and code < 0 else f"exit status {code}"
        raise HarnessError(f"the evaluation worker stopped unexpectedly: {reason}" +
                           (f"; last output: {tail[0][:200]}" if tail[0] else ""),
                           "see the README's security model for the worker's limits")  # fmt: skip

    def _kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _read_stderr(self) -> None:
        while raw := os.read(self.proc.stderr.fileno(), 4096):
            chunk = raw.decode("utf-8", "replace")
            self.stderr_tail.append(chunk)
            if self.progress:
                sys.stderr.write(chunk)
                sys.stderr.flush()


def _terminal(reply: dict[str, Any]) -> dict[str, Any]:
    if reply["op"] == "error":
        raise HarnessError(reply["problem"], reply.get("fix"))
    return reply
