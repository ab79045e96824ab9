"""A real terminal for end-to-end tests: a private tmux server running a command, typed into and read back."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

WIDTH, HEIGHT = 110, 32


class Terminal:
    """One tmux session on a private server, running a command; read with ``screen()``."""

    def __init__(self, socket: Path, command: str, env: dict[str, str]) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is not installed: apt-get install tmux (the end-to-end test drives a real terminal)")
        self.base = ["tmux", "-S", str(socket)]
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items()
                           if key.startswith(("STARCHAT_TUI_", "HF_")) or key in ("PATH", "HOME", "PYTHONPATH"))
        # The shell stays after the app exits so its exit code can be read off the screen.
        script = f"env {exports} TERM=xterm-256color {command}; echo EXIT=$?; sleep 600"
        subprocess.run([*self.base, "new-session", "-d", "-s", "e2e", "-x", str(WIDTH), "-y", str(HEIGHT), script],
                       check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", "e2e"], capture_output=True, text=True,
                              check=True).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "e2e", *(["-l"] if literal else []), *keys], check=True)

    def type(self, text: str) -> None:
        self.keys(text, literal=True)

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never appeared; the terminal shows:\n{screen}")
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def cli(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "starchat_tui", *args])
