"""A fork server for sandboxed CPU workers: torch is imported once per harness process, not once per worker.

A worker's start is mostly its interpreter importing torch (~2 s of CPU; a run starts two workers, a test session
over a hundred). The fork server is an isolated interpreter (the worker's command line, the worker's scrubbed
environment) that imports ``harness.worker.session`` (torch with it), before its first explaining worker what such a
worker imports on first use (``PRELOAD``: captum with matplotlib, scipy's image filters; ~0.5 s), and only forks:
each worker is a child that takes the pipes, working directory and environment the parent passes over a socket,
starts a session of its own and runs ``python -I -m harness.worker``'s ``main`` exactly as a fresh interpreter
would: the spawn spec on stdin, the supervisor, the sandbox, then the session. Nothing of a submission ever runs in
the server: a worker loads its submission only after it has forked off and sandboxed itself, and the server holds no
secret (its environment is the workers' scrubbed one; it never sees a spec, a request or the database).

- **One server per harness process and environment** (:func:`spawn`); a process forked from the harness starts
  its own. It exits when the harness's end of its socket closes or the harness is no longer its parent (checked
  every second; not ``PR_SET_PDEATHSIG``, which follows the thread that started it); each worker's supervisor
  dies with the server (``PR_SET_PDEATHSIG``), which takes the worker down with it (harness.worker.containment).
- **The server reaps its workers** and reports each exit status; it signals a worker (or its process group) only
  while that worker is its unreaped child, so a recycled process ID is never signalled.
- **Only CPU workers**: a CUDA worker starts as a fresh interpreter (no process that has touched the driver may
  fork, and the server is not made to find out). ``ROBINT_FORKSERVER=0`` starts every worker fresh; a server that
  fails to start is not tried again in this process (every worker then starts fresh).

The workers share the server's address-space layout and its hash seed; their random generators are seeded by the
run (and Python's ``random`` reseeds itself in a forked child).

One module: the harness's side (:class:`ForkServer`, :func:`spawn`) and the server's loop (:func:`serve`) speak one
private message protocol and change together.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from typing import Any

OFF_VARIABLE = "ROBINT_FORKSERVER"
READY_S = 300.0  # the server's own start (torch import), as a worker's (harness.worker.channel.START_S)
_MAX_MESSAGE = 1 << 20
_PER_WORKER = ("HOME", "TMPDIR", "USER", "LOGNAME")  # and every variable whose value is the worker's directory

# imported lazily by the suite (metrics.attribution._captum, metrics.controls): by the server, once, before it forks
# its first worker that will explain, instead of by every such worker
PRELOAD: tuple[str, ...] = ("captum.attr", "scipy.ndimage")


# --- the harness's side ------------------------------------------------------------------------------------------


class ForkedProcess:
    """A worker forked by the server, with the part of :class:`subprocess.Popen` the channel uses: ``pid``,
    ``stdin`` (binary, buffered), ``stdout``/``stderr`` (read through ``fileno()``), ``poll``, ``wait``,
    ``returncode``, ``send_signal``; and :meth:`killpg` for its process group."""

    def __init__(self, server: ForkServer, pid: int, stdin: Any, stdout: Any, stderr: Any) -> None:
        self.server, self.pid = server, pid
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            status = self.server.status(self.pid)
            if status is not None:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.poll() is None:
            self.server.wait(self.pid, timeout)
        code = self.poll()
        if code is None:
            raise subprocess.TimeoutExpired("forked worker", timeout or 0.0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            self.server.signal(self.pid, sig, group=False)

    def killpg(self, sig: int) -> None:
        if self.poll() is None:
            self.server.signal(self.pid, sig, group=True)


class ForkServer:
    """The harness's end of one server: spawn workers, learn their exits, signal them (module docstring)."""

    def __init__(self, argv: list[str], env: Mapping[str, str]) -> None:
        self.owner = os.getpid()
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [*argv, str(theirs.fileno()), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(env),
                cwd="/",
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        finally:
            theirs.close()
        self._lock = threading.Lock()  # one request at a time
        self._changed = threading.Condition()
        self._replies: list[dict[str, Any]] = []
        self._exits: dict[int, int] = {}
        self._alive = True
        self.sock.settimeout(READY_S)
        try:
            ready = json.loads(self.sock.recv(_MAX_MESSAGE) or b"{}")
        except (OSError, ValueError):
            ready = {}
        if ready.get("op") != "ready":
            self.close()
            raise OSError("the fork server did not start")
        self.sock.settimeout(None)
        threading.Thread(target=self._read, daemon=True, name="forkserver").start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def spawn(self, env: Mapping[str, str], cwd: str, *, preload: bool = False) -> ForkedProcess:
        """A new worker whose stdin, stdout and stderr are pipes to this process, in its own session; ``preload``:
        it will explain (the server imports ``PRELOAD`` first, once)."""
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        try:
            message = {"op": "spawn", "env": dict(env), "cwd": cwd, "preload": preload}
            reply = self._request(message, [stdin_r, stdout_w, stderr_w])
        except BaseException:
            for fd in (stdin_w, stdout_r, stderr_r):
                os.close(fd)
            raise
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        return ForkedProcess(
            self,
            int(reply["pid"]),
            os.fdopen(stdin_w, "wb"),
            os.fdopen(stdout_r, "rb", 0),
            os.fdopen(stderr_r, "rb", 0),
        )

    def status(self, pid: int) -> int | None:
        """The wait status of worker ``pid``, once the server has reaped it (a lost server: killed)."""
        with self._changed:
            if pid in self._exits:
                return self._exits[pid]
            return None if self._alive else int(signal.SIGKILL)

    def wait(self, pid: int, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while pid not in self._exits and self._alive:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                self._changed.wait(left)

    def signal(self, pid: int, sig: int, *, group: bool) -> None:
        try:
            self._request({"op": "signal", "pid": pid, "sig": int(sig), "group": group})
        except OSError:
            pass  # the server is gone, and its workers with it

    def close(self) -> None:
        """Stop the server: it exits when its socket closes (its workers' supervisors then stop their workers)."""
        self._alive = False
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _request(self, message: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        with self._lock:
            if not self._alive:
                raise OSError("the fork server is gone")
            data = json.dumps(message).encode()
            socket.send_fds(self.sock, [data], fds) if fds else self.sock.send(data)
            with self._changed:
                if not self._changed.wait_for(lambda: self._replies or not self._alive, timeout=READY_S):
                    self._alive = False  # a server that does not answer is not asked again
                if not self._replies:
                    raise OSError("the fork server is gone")
                reply = self._replies.pop(0)
        if reply.get("op") == "error":
            raise OSError(f"the fork server could not {message['op']}: {reply.get('text')}")
        return reply

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(_MAX_MESSAGE)
                message = json.loads(data) if data else None
            except (OSError, ValueError):
                message = None
            with self._changed:
                if message is None:
                    self._alive = False
                    self._changed.notify_all()
                    return
                if message.get("op") == "exited":
                    self._exits[int(message["pid"])] = int(message["status"])
                else:
                    self._replies.append(message)
                self._changed.notify_all()


_servers: dict[tuple[Any, ...], ForkServer] = {}
_failed: set[tuple[Any, ...]] = set()
_servers_lock = threading.Lock()


def spawn(argv: list[str], env: Mapping[str, str], cwd: str, *, preload: bool = False) -> ForkedProcess | None:
    """A worker with environment ``env`` and working directory ``cwd``, forked by this process's server for that
    environment (started with ``argv``: the worker's isolated interpreter running this module), or None where
    workers start fresh (``ROBINT_FORKSERVER=0``, or no server could start). ``preload``: the worker will explain
    (its server imports ``PRELOAD`` before forking it, once; a worker that only attacks or classifies needs none)."""
    if os.environ.get(OFF_VARIABLE, "1") == "0" or not hasattr(socket, "send_fds"):
        return None
    base = {k: v for k, v in env.items() if k not in _PER_WORKER and v != cwd}
    key = (os.getpid(), tuple(argv), tuple(sorted(base.items())))
    with _servers_lock:
        if key in _failed:
            return None
        server = _servers.get(key)
        if server is None or not server._alive:
            try:
                server = _servers[key] = ForkServer(argv, base)
            except OSError:
                _failed.add(key)
                return None
    try:
        return server.spawn(env, cwd, preload=preload)
    except OSError:
        return None


def server_pids() -> list[int]:
    """The process IDs of this process's live servers (tests look for workers among their children)."""
    with _servers_lock:
        return [s.pid for key, s in _servers.items() if key[0] == os.getpid() and s._alive]


def close_all() -> None:
    """Stop this process's servers (at exit)."""
    with _servers_lock:
        servers = [s for key, s in _servers.items() if key[0] == os.getpid()]
        _servers.clear()
    for server in servers:
        server.close()


atexit.register(close_all)


# --- the server ----------------------------------------------------------------------------------------------------


def _preload() -> None:
    """Import ``PRELOAD``. captum imports matplotlib's font manager, which reads or builds its font list in a cache
    directory: a private one here (the server's environment names none), removed once the list is in memory."""
    cache = tempfile.mkdtemp(prefix="robint-forkserver-")
    os.environ["MPLCONFIGDIR"] = cache
    try:
        for name in PRELOAD:
            importlib.import_module(name)
    finally:
        del os.environ["MPLCONFIGDIR"]
        shutil.rmtree(cache, ignore_errors=True)


def serve(fd: int, parent: int) -> None:
    """The server's loop (module docstring): fork a worker per ``spawn``, signal one per ``signal``, and report
    every exit, until the harness's end of the socket ``fd`` closes."""
    from harness.core import allocator

    allocator.tune()  # before torch, as in a worker (harness.core.allocator); a forked worker inherits it
    if os.getppid() != parent:
        os._exit(1)
    import harness.worker.__main__  # noqa: F401  (the worker's entry point)
    import harness.worker.session  # noqa: F401  (torch and the metrics: what this server is for)

    sock = socket.socket(fileno=fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sys.stdout.flush()
    sys.stderr.flush()
    sock.send(json.dumps({"op": "ready"}).encode())
    live: set[int] = set()
    preloaded = False
    while True:
        ready, _, _ = select.select([sock, wake_r], [], [], 1.0)
        if os.getppid() != parent:
            os._exit(0)  # the harness is gone (a copy of its socket may live on in a process it forked)
        if wake_r in ready:
            while True:
                try:
                    if not os.read(wake_r, 4096):
                        break
                except BlockingIOError:
                    break
            _reap(sock, live)
        if sock in ready:
            try:
                data, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, 3)
            except OSError:
                os._exit(0)
            if not data:
                os._exit(0)  # the harness is gone: the workers' supervisors follow this process
            message = json.loads(data)
            if message["op"] == "spawn":
                if message.get("preload") and not preloaded:
                    _preload()
                    preloaded = True
                reply = _fork(message, fds, sock, (wake_r, wake_w))
                if "pid" in reply:
                    live.add(reply["pid"])
            else:
                pid, sig = int(message["pid"]), int(message["sig"])
                if pid in live:
                    try:
                        os.killpg(pid, sig) if message["group"] else os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
                reply = {"op": "signalled"}
            sock.send(json.dumps(reply).encode())
            _reap(sock, live)


def _reap(sock: socket.socket, live: set[int]) -> None:
    while live:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        live.discard(pid)
        sock.send(json.dumps({"op": "exited", "pid": pid, "status": status}).encode())


def _fork(message: dict[str, Any], fds: list[int], sock: socket.socket, wake: tuple[int, int]) -> dict[str, Any]:
    if len(fds) != 3:
        for fd in fds:
            os.close(fd)
        return {"op": "error", "text": f"a spawn needs 3 descriptors, got {len(fds)}"}
    pid = os.fork()
    if pid == 0:
        _become_worker(message, fds)
    for fd in fds:
        os.close(fd)
    return {"op": "spawned", "pid": pid}


def _become_worker(message: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: become what ``python -I -m harness.worker`` is at its start, then run it; never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the socket, the wake-up pipe and the passed copies
        os.chdir(message["cwd"])
        os.environ.clear()
        os.environ.update(message["env"])
        tempfile.tempdir = None  # TMPDIR is read again
        from harness.worker.__main__ import main

        code = main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]))
