"""The parent's side of the conversation with a worker: a sandboxed subprocess, or in-process with --trusted.

Nothing a worker writes can exhaust the parent or keep a worker alive past its limits:

- its protocol output is read in bounded pieces: a line longer than the request's ``max_line`` (derived by the
  caller from the largest message the run can legitimately send) ends the run as "not a protocol message", and at
  most two unread lines are buffered (the worker blocks until the parent has read them);
- every reply must be one the request in flight allows (harness.worker.protocol.REPLIES); its content is checked
  by the caller (harness.pipeline.validate);
- three clocks stop it: the stall timeout (no message at all, heartbeats included), the request's ``budget``
  (no progress message: heartbeats, which a submission can fake, do not count) and the run's wall-clock deadline;
- its stderr reaches the terminal (with progress on) line by line, each line escaped as error lines are
  (control, bidi and other format characters, ``\\r`` included, shown as ``\\xNN``/``\\uNNNN``), and at most
  :data:`STDERR_CAP` bytes per run (:class:`OutputCap`, shared by the run's workers); the rest is counted and
  reported in one line when the worker ends.

One module because both channels (subprocess and in-process) answer the same requests with the same budgets and
error handling; splitting them would split that contract.
"""

from __future__ import annotations

import codecs
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError
from harness.core.schema import escape_controls
from harness.worker import cgroups, forkserver
from harness.worker.containment import (
    make_worker_dir,
    private_copy,
    remove_tree,
    sweep_stale_worker_dirs,
    unprivileged_user,
)
from harness.worker.protocol import ALWAYS, REPLIES, TERMINAL, decode, encode
from harness.worker.sandbox import default_read_paths

OnMessage = Callable[[dict[str, Any]], None]


def import_roots() -> tuple[list[str], list[str]]:
    """What this process imports from that an isolated interpreter would not search: the ``PYTHONPATH`` entries
    (searched first, as ``PYTHONPATH`` is) and the directory holding the ``harness`` package (searched last, so a
    checkout run without ``pip install`` is found and an installed one's site-packages shadows nothing)."""
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    first = [str(Path(p).resolve()) for p in extra if Path(p).is_dir()]
    return list(dict.fromkeys(first)), [str(Path(__file__).resolve().parents[2])]


def worker_argv(module: str = "harness.worker") -> list[str]:
    """The worker's command line: an isolated interpreter (``-I``: no ``PYTHONPATH``, user site or working
    directory on its path) that first puts back :func:`import_roots`, then runs ``module`` as ``-m`` would; without
    them a worker of an uninstalled checkout, or of packages on ``PYTHONPATH``, cannot import ``harness``."""
    first, last = import_roots()
    boot = (
        f"import runpy, sys; sys.path[0:0] = {first!r}; sys.path += {last!r}; "
        f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-I", "-c", boot]


DEFAULT_MAX_LINE = 1 << 20  # the cap for requests that carry no arrays (load, check): 1 MiB
START_S = 300.0  # the worker's start (sandbox, torch import): before any submission code, so nothing can fake it
_TEXT_LIMIT = 2000  # characters kept of a worker's error text
_TOO_LONG = object()
STDERR_CAP = 1 << 20  # bytes of a run's worker output (stderr) shown on the terminal; the rest is only counted
_LINE_CAP = 4096  # characters of one line of worker output held before it is shown (as a line of its own)


class OutputCap:
    """What is left of a run's budget of worker output on the terminal (:data:`STDERR_CAP` bytes, shared by every
    worker of the run); what does not fit is counted, not shown."""

    def __init__(self, limit: int = STDERR_CAP) -> None:
        self.left, self.dropped = limit, 0
        self._lock = threading.Lock()

    def take(self, text: str) -> bool:
        """Whether ``text`` may be shown (and charge it); if not, count it as dropped."""
        size = len(text.encode("utf-8", "replace"))
        with self._lock:
            if size <= self.left:
                self.left -= size
                return True
            self.left, self.dropped = 0, self.dropped + size
            return False


_SIGNALS = {
    signal.SIGKILL: "it was killed (SIGKILL: out of memory, or killed by the system)",
    signal.SIGXCPU: "it exceeded its CPU-time limit (--cpu-limit)",
    signal.SIGSEGV: "it crashed (SIGSEGV; often the memory limit hit inside native code: try --memory-limit)",
    signal.SIGABRT: "it aborted (SIGABRT)",
    signal.SIGSYS: "it made a forbidden system call (SIGSYS)",
}


class InProcessChannel:
    """``--trusted``: the worker session runs in this process (for debugging your own code). It still loads the
    model from a private copy of its declared files (``model_files``; ``model_root``), as a sandboxed worker does."""

    def __init__(self, model_files: Mapping[str, Path] | None = None) -> None:
        from harness.worker.session import WorkerSession

        self.model_root = private_copy(model_files or {})
        self._messages: list[dict[str, Any]] = []
        self.session = WorkerSession(send=self._messages.append)
        self.sandbox_report: dict[str, Any] = {"trusted": True}

    def request(
        self,
        message: dict[str, Any],
        on_message: OnMessage | None = None,
        *,
        budget: float | None = None,
        max_line: int | None = None,
    ) -> dict[str, Any]:
        self._messages.clear()
        allowed = REPLIES[message["op"]] | ALWAYS

        def send(reply: dict[str, Any]) -> None:
            reply = decode(encode(reply))  # what the pipe would deliver (numpy arrays), so both paths validate alike
            _check_allowed(reply, message["op"], allowed)
            if reply["op"] not in TERMINAL and reply["op"] != "heartbeat" and on_message is not None:
                on_message(reply)
            elif reply["op"] in TERMINAL:
                self._messages.append(reply)

        self.session.send = send
        self.session.handle(message)
        return _terminal(self._messages[-1]) if self._messages else {"op": "bye"}

    def limit_total(self, seconds: float | None) -> None:
        pass

    @property
    def closed(self) -> bool:
        return not self.model_root.exists()

    def close(self) -> None:
        remove_tree(self.model_root)


class SubprocessChannel:
    """A sandboxed worker process; stops it on stalls, exhausted budgets, timeouts and exit. It may read its private
    copy of the model's declared files (``model_files``, copied to ``model_root``), ``read_paths`` and the Python
    installation (harness.worker.sandbox.default_read_paths), never ``forbidden_paths``. ``run_dirs`` (the run's
    master copy of the model's files) are removed by the worker's supervisor should the harness die."""

    def __init__(
        self,
        *,
        read_paths: list[Path],
        model_files: Mapping[str, Path] | None = None,
        memory_bytes: int | None,
        memory_limit_kind: str,
        cpu_seconds: int | None,
        stall_timeout: float,
        timeout: float | None,
        progress: bool,
        required_paths: list[Path] | None = None,
        pid_namespace: bool = True,
        env: dict[str, str] | None = None,
        forbidden_paths: list[Path] | None = None,
        max_processes: int | None = None,
        output: OutputCap | None = None,
        run_dirs: list[Path] | None = None,
        explains: bool = False,
    ) -> None:
        """``env``: variables set in the worker's environment after it is scrubbed (its thread count:
        harness.core.threads.thread_env); ``explains``: the worker will explain (a forked one's server imports the
        attribution libraries before forking it: harness.worker.forkserver.PRELOAD)."""
        from harness.worker.sandbox import scrubbed_env

        sweep_stale_worker_dirs()
        user = unprivileged_user()
        self.tmp = make_worker_dir(user)
        try:
            self.model_root = private_copy(model_files or {}, user)
        except BaseException:
            remove_tree(self.tmp)
            raise
        read_paths = [*read_paths, self.model_root]
        required_paths = [*(required_paths or []), *(self.model_root / name for name in (model_files or {}))]
        self.cgroup = cgroups.create(memory_bytes, max_processes)
        self.stall_timeout, self.progress = stall_timeout, progress
        self.output = output if output is not None else OutputCap()
        self._shown_dropped = self.output.dropped
        self._done = False
        self.started = time.monotonic()
        self.deadline = None if timeout is None else self.started + timeout
        self.max_line = DEFAULT_MAX_LINE
        self._last = self.started
        self._closed = threading.Event()
        worker_env = {
            **scrubbed_env(self.tmp, user=None if user is None else f"robint-worker-{user[0]}"),
            **(env or {}),
        }
        try:
            self.proc: subprocess.Popen[bytes] | forkserver.ForkedProcess | None = None
            if pid_namespace:  # a CPU worker: forked by the fork server (a CUDA worker starts fresh)
                argv = worker_argv(forkserver.__name__)
                self.proc = forkserver.spawn(argv, worker_env, str(self.tmp), preload=explains)
            if self.proc is None:
                self.proc = subprocess.Popen(
                    worker_argv(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=self.tmp,
                    env=worker_env,
                    start_new_session=True,
                    close_fds=True,
                )
        except BaseException:
            remove_tree(self.tmp)
            remove_tree(self.model_root)
            cgroups.remove(self.cgroup)
            raise
        self._lines: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.stderr_tail: deque[str] = deque(maxlen=64)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._stderr_done = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_done.start()
        spec = {
            # the allow-list, carved here: the worker is never told the forbidden paths (the database's among them)
            "read_paths": [str(p) for p in default_read_paths(extra=read_paths, forbidden=forbidden_paths or ())],
            "max_processes": max_processes,
            "cgroup": None if self.cgroup is None else str(self.cgroup),
            "cleanup": [str(self.model_root), *(str(p) for p in run_dirs or [])],
            "write_paths": [str(self.tmp)],
            "memory_bytes": memory_bytes,
            "memory_limit_kind": memory_limit_kind,
            "cpu_seconds": cpu_seconds,
            "require_isolation": True,
            # the worker's parent, whose death ends it: this process, or the fork server (which ends with this one)
            "parent_pid": self.proc.server.pid if isinstance(self.proc, forkserver.ForkedProcess) else os.getpid(),
            "pid_namespace": pid_namespace,
            "run_as": user,
            "required_paths": [str(p) for p in (required_paths or [])],
        }
        try:
            self._write(spec)
            start = max(START_S, stall_timeout)
            reply = self._next("start", time.monotonic() + start, start, stall=False)
            if reply["op"] not in ("sandbox", "error"):
                raise _malformed(f"the worker began with {reply['op']!r} instead of its sandbox report")
            if reply["op"] == "error":
                _terminal(reply)
        except BaseException:
            self.close()
            raise
        report = reply.get("report")
        self.sandbox_report = report if isinstance(report, dict) else {}

    def limit_total(self, seconds: float | None) -> None:
        """Set the run's wall-clock limit, counted from the worker's start (unless one is set already)."""
        if self.deadline is None and seconds is not None:
            self.deadline = self.started + seconds

    def request(
        self,
        message: dict[str, Any],
        on_message: OnMessage | None = None,
        *,
        budget: float | None = None,
        max_line: int | None = None,
    ) -> dict[str, Any]:
        """Send one request; pass its progress messages to ``on_message`` and return its terminal reply.

        ``budget``: seconds the worker may take to its next progress message or its answer (heartbeats do not
        count); ``max_line``: the longest line it may send (default :data:`DEFAULT_MAX_LINE`).
        """
        op = message["op"]
        allowed = REPLIES[op] | ALWAYS
        self.max_line = max_line or DEFAULT_MAX_LINE
        self._write(message)
        progress_by = None if budget is None else time.monotonic() + budget
        while True:
            reply = self._next(op, progress_by, budget)
            _check_allowed(reply, op, allowed, self._kill)
            if reply["op"] == "heartbeat":
                continue
            if reply["op"] in TERMINAL:
                return _terminal(reply)
            if on_message is not None:
                on_message(reply)
                self._last = time.monotonic()  # the parent's own time (storing, re-classifying) is no stall
            if budget is not None:
                progress_by = time.monotonic() + budget

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run: the worker and every process it started are gone."""
        return self._done

    def close(self) -> None:
        """Ask the worker to exit, wait for it (and, as the supervisor waits for them, for every process it started),
        stop it if it does not, and remove its temporary directory. When this returns, nothing of the worker runs."""
        if self._done:
            return
        self._closed.set()
        if self.proc.poll() is None:
            try:
                self._write({"op": "exit"}, quiet=True)
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                pass
        self._kill()
        remove_tree(self.tmp)
        remove_tree(self.model_root)
        cgroups.remove(self.cgroup)
        self._stderr_done.join(timeout=5)
        dropped = self.output.dropped - self._shown_dropped
        if dropped and self.progress:
            sys.stderr.write(f"(the worker wrote {dropped} more bytes to its stderr; not shown)\n")
            sys.stderr.flush()
        self._done = True

    def _write(self, message: dict[str, Any], quiet: bool = False) -> None:
        try:
            self.proc.stdin.write((encode(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            if not quiet:
                self._died()
        self._last = time.monotonic()

    def _next(
        self, op: str, progress_by: float | None, budget: float | None = None, stall: bool = True
    ) -> dict[str, Any]:
        clocks = [(self._last + self.stall_timeout, "stall")] if stall else []
        if progress_by is not None:
            clocks.append((progress_by, "budget"))
        if self.deadline is not None:
            clocks.append((self.deadline, "timeout"))
        when, clock = min(clocks)
        try:
            item = self._lines.get(timeout=max(0.0, when - time.monotonic()))
        except queue.Empty:
            self._kill()
            raise self._timed_out(clock, op, budget) from None
        if item is None:
            self._died()
        if item is _TOO_LONG:
            self._kill()
            raise _malformed(f"a line longer than {self.max_line} bytes during {op!r}")
        try:
            reply = decode(item)
        except ValueError as exc:
            self._kill()
            raise _malformed(str(exc)) from None
        self._last = time.monotonic()
        return reply

    def _timed_out(self, clock: str, op: str, budget: float | None) -> HarnessError:
        if clock == "timeout":
            return HarnessError(
                f"the evaluation exceeded its wall-clock limit of {self.deadline - self.started:.0f} s and was stopped",
                "raise --timeout (the default is derived from the run's size: README, Security model), "
                "or pass --timeout none for code you trust",
            )
        if clock == "budget" and op == "start":
            return HarnessError(
                f"the evaluation worker did not start within {budget:.0f} s (its sandbox and torch's import)",
                "check the machine's load; see the README's security model for the worker's limits",
            )
        if clock == "budget":
            return HarnessError(
                f"the worker's {op!r} step made no verifiable progress within its budget of {budget:.0f} s "
                "(heartbeats do not extend it) and was stopped",
                "if the model is just slow, raise --stall-timeout (budgets grow with it) or pass --timeout none",
            )
        return HarnessError(
            f"the model made no progress for {self.stall_timeout:g} s (a forward pass that never returns?) and "
            "was stopped",
            "fix the model, or raise --stall-timeout if it is just slow",
        )

    def _died(self) -> None:
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._kill()
            code = self.proc.returncode
        text = "".join(self.stderr_tail)
        tail = text.strip().splitlines()[-1:] or [""]
        oom = cgroups.oom_killed(self.cgroup)
        if oom or re.search(r"cannot allocate memory|out of memory|MemoryError|bad_alloc", text, re.IGNORECASE):
            raise HarnessError(
                "the evaluation worker ran out of memory (its memory limit) and stopped",
                "raise --memory-limit, or reduce --batch-size",
            )
        reason = _SIGNALS.get(-code, f"it was killed by signal {-code}") if code and code < 0 else f"exit status {code}"
        raise HarnessError(
            f"the evaluation worker stopped unexpectedly: {reason}"
            + (f"; last output: {tail[0][:200]}" if tail[0] else ""),
            "see the README's security model for the worker's limits",
        )

    def _kill(self) -> None:
        """Stop the worker: its supervisor kills it and every process it started (SIGTERM), then SIGKILL."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            try:
                if isinstance(self.proc, forkserver.ForkedProcess):
                    self.proc.killpg(signal.SIGKILL)
                else:
                    os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def _put(self, item: Any) -> bool:
        while not self._closed.is_set():
            try:
                self._lines.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _read_stdout(self) -> None:
        """Split the worker's protocol output into lines without ever holding more than ``max_line`` bytes of one."""
        fd, buffer, scanned = self.proc.stdout.fileno(), bytearray(), 0
        while chunk := os.read(fd, 1 << 20):
            buffer += chunk
            while (end := buffer.find(b"\n", scanned)) >= 0:
                if end > self.max_line:
                    self._put(_TOO_LONG)
                    return
                line = bytes(buffer[:end])
                del buffer[: end + 1]
                scanned = 0
                if not self._put(line):
                    return
            scanned = len(buffer)
            if len(buffer) > self.max_line:
                self._put(_TOO_LONG)
                return
        self._put(None)

    def _read_stderr(self) -> None:
        """Keep the tail of the worker's stderr (for a crash's diagnosis) and, with progress on, show it line by line,
        escaped, within the run's :class:`OutputCap`."""
        decoder, line = codecs.getincrementaldecoder("utf-8")("replace"), ""
        while raw := os.read(self.proc.stderr.fileno(), 1 << 16):
            chunk = decoder.decode(raw)
            self.stderr_tail.append(chunk[-4096:])
            if not self.progress:
                continue
            line += chunk
            *complete, line = line.split("\n")
            if len(line) > _LINE_CAP:
                complete.append(line)
                line = ""
            self._show(complete)
        if self.progress and (line := line + decoder.decode(b"", final=True)):
            self._show([line])

    def _show(self, lines: list[str]) -> None:
        shown = [line for text in lines if self.output.take(line := escape_controls(text) + "\n")]
        if shown:
            sys.stderr.write("".join(shown))
            sys.stderr.flush()


def _check_allowed(reply: dict[str, Any], op: str, allowed: frozenset[str], kill: Callable[[], None] | None = None):
    kind = reply["op"]
    if kind not in allowed or (kind == "heartbeat" and set(reply) != {"op"}):
        if kill is not None:
            kill()
        raise HarnessError(
            f"the worker sent {kind[:40]!r} during {op!r}, which that step never sends",
            "the submission may be tampering with the worker; run it with --trusted --debug to investigate",
        )


def _malformed(what: str) -> HarnessError:
    return HarnessError(
        f"the worker wrote something that is not a protocol message to its output: {what}",
        "do not write to the worker's protocol output (file descriptor 1 from native code)",
    )


def _terminal(reply: dict[str, Any]) -> dict[str, Any]:
    if reply["op"] == "error":
        problem, fix = reply.get("problem"), reply.get("fix")
        raise HarnessError(
            str(problem)[:_TEXT_LIMIT] if isinstance(problem, str) else "the worker reported a malformed error",
            str(fix)[:_TEXT_LIMIT] if isinstance(fix, str) else None,
        )
    return reply
