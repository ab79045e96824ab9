"""The app's side of a run: ask the zygote for a supervisor, read the output under a cap, collect the status.

The zygote (see supervisor.py) is started on the first run and kept for the life of the process, so a
run pays for a fork, not for a Python start. Nothing here runs between fork and exec in our own
process (no ``preexec_fn``): the app is threaded, so limits and privilege changes all happen in the
single-threaded supervisor.

Stopping a run (cancel, output cap) means closing its lifeline pipe; the supervisor then sweeps the
whole tree and reports. If the app dies, every lifeline closes with it.
"""

from __future__ import annotations

import atexit
import codecs
import marshal
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SandboxError

SUPERVISOR = str(Path(__file__).with_name("supervisor.py"))
# How long past its own timeout the supervisor gets to sweep and report before we kill it ourselves.
GRACE_S = 5.0

OutputCallback = Callable[[str, str], None]


class Zygote:
    """The long-lived helper that forks one supervisor per run. One per process, started lazily."""

    _lock = threading.Lock()
    _current: Zygote | None = None

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", SUPERVISOR, "--zygote", str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),), start_new_session=True, env={}, cwd="/",
            )
        finally:
            theirs.close()
        self.sock = ours
        self.pid = os.getpid()

    def spawn(self, spec: bytes, fds: list[int]) -> int:
        # Framing: a 4-byte length that carries the file descriptors, then the marshalled spec.
        socket.send_fds(self.sock, [struct.pack("!I", len(spec))], fds)
        self.sock.sendall(spec)
        (size,) = struct.unpack("!I", _read_exact(self.sock, 4))
        answer = marshal.loads(_read_exact(self.sock, size))
        if not isinstance(answer, int):
            raise SandboxError(f"the sandbox helper refused the run: {answer}")
        return answer

    def close(self, *, wait: float = 2.0) -> None:
        """Hang up; the zygote exits when its socket closes (running supervisors carry on)."""
        self.sock.close()
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    @classmethod
    def start_run(cls, spec: bytes, fds: list[int]) -> int:
        """A supervisor's pid for this run; starts (or restarts) the zygote when needed."""
        with cls._lock:
            for attempt in (1, 2):
                zygote = cls._current
                # After a fork (multiprocessing, tests) the socket belongs to the parent's zygote.
                if zygote is None or zygote.pid != os.getpid() or zygote.process.poll() is not None:
                    if zygote is not None and zygote.pid == os.getpid():
                        zygote.close(wait=0)
                    zygote = cls._current = cls()
                try:
                    return zygote.spawn(spec, fds)
                except (ConnectionError, OSError) as error:
                    cls._current = None
                    zygote.close(wait=0)
                    if attempt == 2:
                        raise SandboxError(f"could not start the sandbox helper: {error}") from None
            raise AssertionError("unreachable")

    @classmethod
    def shutdown(cls) -> None:
        with cls._lock:
            if cls._current is not None and cls._current.pid == os.getpid():
                cls._current.close()
            cls._current = None


atexit.register(Zygote.shutdown)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the sandbox helper went away")
        data += chunk
    return data


@dataclass
class Outcome:
    """Raw facts of one supervised run, before they become a Result."""

    stdout: bytes = b""
    stderr: bytes = b""
    status: dict = field(default_factory=dict)
    truncated: bool = False
    cancelled: bool = False
    duration: float = 0.0


class _Streams:
    """Both pipes' bytes, kept up to a shared cap; chunks go to ``on_output`` as text as they come."""

    def __init__(self, cap: int, on_output: OutputCallback | None) -> None:
        self.cap = cap
        self.kept = {"stdout": bytearray(), "stderr": bytearray()}
        self.total = 0
        self.on_output = on_output
        self.decoders = {name: codecs.getincrementaldecoder("utf-8")("replace") for name in self.kept}

    def add(self, name: str, data: bytes) -> bool:
        """Keep what fits; True once the cap is passed."""
        room = self.cap - self.total
        self.total += len(data)
        if room > 0:
            piece = data[:room]
            self.kept[name] += piece
            if self.on_output is not None:
                text = self.decoders[name].decode(piece)
                if text:
                    self.on_output(name, text)
        return self.total > self.cap


class _Run:
    """The pipes of one run, on our side."""

    def __init__(self) -> None:
        self.stdout_r, self.stdout_w = os.pipe()
        self.stderr_r, self.stderr_w = os.pipe()
        self.status_r, self.status_w = os.pipe()
        self.lifeline_r, self.lifeline_w = os.pipe()

    def theirs(self) -> list[int]:
        return [self.stdout_w, self.stderr_w, self.status_w, self.lifeline_r]

    def close_theirs(self) -> None:
        for fd in self.theirs():
            os.close(fd)

    def cut_lifeline(self) -> None:
        if self.lifeline_w >= 0:
            os.close(self.lifeline_w)
            self.lifeline_w = -1

    def close(self) -> None:
        self.cut_lifeline()
        for fd in (self.stdout_r, self.stderr_r, self.status_r):
            os.close(fd)


def launch(
    spec: dict,
    *,
    output_cap: int,
    on_output: OutputCallback | None = None,
    cancel: threading.Event | None = None,
) -> Outcome:
    """Run one spec under a fresh supervisor and wait for it, whatever happens."""
    started = time.monotonic()
    pipes = _Run()
    try:
        supervisor = Zygote.start_run(marshal.dumps(spec), pipes.theirs())
    except BaseException:
        pipes.close_theirs()
        pipes.close()
        raise
    pipes.close_theirs()
    outcome = Outcome()
    streams = _Streams(output_cap, on_output)
    status = bytearray()
    names = {pipes.stdout_r: "stdout", pipes.stderr_r: "stderr", pipes.status_r: "status"}
    hard_deadline = started + spec["timeout"] + GRACE_S
    try:
        with selectors.DefaultSelector() as selector:
            for fd in names:
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                if cancel is not None and cancel.is_set() and not outcome.cancelled:
                    outcome.cancelled = True
                    pipes.cut_lifeline()
                if time.monotonic() > hard_deadline:
                    _kill_group(supervisor)
                    break
                for key, _ in selector.select(timeout=0.1):
                    try:
                        data = os.read(key.fd, 65536)
                    except BlockingIOError:
                        continue
                    if not data:
                        selector.unregister(key.fd)
                        continue
                    name = names[key.fd]
                    if name == "status":
                        status += data
                    elif streams.add(name, data) and not outcome.truncated:
                        outcome.truncated = True
                        pipes.cut_lifeline()
    except BaseException:
        # Ctrl-C, or our own bug: the snippet must not outlive us either way.
        pipes.cut_lifeline()
        _drain(pipes.status_r, deadline=time.monotonic() + GRACE_S)
        raise
    finally:
        pipes.close()
    outcome.duration = time.monotonic() - started
    outcome.stdout = bytes(streams.kept["stdout"])
    outcome.stderr = bytes(streams.kept["stderr"])
    try:
        outcome.status = marshal.loads(bytes(status)) if status else {}
    except (EOFError, ValueError, TypeError):
        outcome.status = {}
    if not outcome.status:
        outcome.status = {"code": None, "error": "the supervisor died without a report"}
    return outcome


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _drain(fd: int, *, deadline: float) -> None:
    """Wait (bounded) until the supervisor has swept and closed its status pipe."""
    os.set_blocking(fd, True)
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                try:
                    if not os.read(fd, 65536):
                        return
                except OSError:
                    return
