"""Checks made from outside the sandbox: a listener that records what reaches it, a /proc scanner that
finds a run's processes by the snippet path in their command line, and a sampler that records how many
of them there were and how much memory they used while the run went on."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def snippet(name: str, **values: object) -> str:
    """A hostile snippet from this folder with its @PLACEHOLDERS@ filled in."""
    text = (HERE / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    assert "@" not in text.replace("@@", ""), f"unfilled placeholder in {name}"
    return text


class Listener:
    """TCP and UDP servers on 127.0.0.1 that record every byte anyone sends them."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.tcp.settimeout(0.2)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self.tcp_port = self.tcp.getsockname()[1]
        self.udp_port = self.udp.getsockname()[1]
        self.stopping = False
        self.threads = [threading.Thread(target=serve, daemon=True) for serve in (self._serve_tcp, self._serve_udp)]
        for thread in self.threads:
            thread.start()

    def _serve_tcp(self) -> None:
        while not self.stopping:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                self.received.append(b"<tcp connection>")
                try:
                    self.received.append(conn.recv(4096))
                except OSError:
                    pass

    def _serve_udp(self) -> None:
        while not self.stopping:
            try:
                self.received.append(self.udp.recv(4096))
            except OSError:
                continue

    def close(self) -> None:
        self.stopping = True
        for thread in self.threads:
            thread.join(2)
        self.tcp.close()
        self.udp.close()


def processes_matching(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line mentions ``marker``."""
    found = []
    needle = marker.encode()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmdline and state != b"Z":
            found.append(int(name))
    return found


def wait_gone(marker: str, timeout: float = 3.0) -> list[int]:
    """Poll until no process mentions ``marker``; returns what is left after ``timeout``."""
    deadline = time.monotonic() + timeout
    left = processes_matching(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_matching(marker)
    return left


def resident(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Sampler:
    """Watches a run from outside: the most processes and the most memory its snippet ever had."""

    def __init__(self, marker: str, every: float = 0.01) -> None:
        self.marker = marker
        self.every = every
        self.peak_count = 0
        self.peak_rss = 0
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while self.running:
            pids = processes_matching(self.marker)
            self.peak_count = max(self.peak_count, len(pids))
            self.peak_rss = max(self.peak_rss, sum(resident(pid) for pid in pids))
            time.sleep(self.every)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join(5)
