"""The real CLI in a real terminal (tmux): type, watch the answer stream, stop one, export, quit, check the db.

This is the user's path end to end: the installed entry point, Textual's real terminal driver, keys
sent as a terminal sends them, and the session database read back afterwards.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

WIDTH, HEIGHT = 110, 32


@pytest.fixture(scope="module")
def long_model(tmp_path_factory) -> str:
    """An untrained tiny model with room for long answers: it rambles until told to stop."""
    from starchat_tui.demo.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("e2e") / "long", train_steps=0, seed=1, n_positions=4096))


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


@pytest.fixture
def terminal_factory(tmp_path, cli_env):
    opened: list[Terminal] = []

    def start(command: str) -> Terminal:
        terminal = Terminal(tmp_path / "tmux.sock", command, cli_env)
        opened.append(terminal)
        return terminal

    yield start
    for terminal in opened:
        terminal.close()


def cli(*args: str) -> str:
    return shlex.join([sys.executable, "-m", "starchat_tui", *args])


def test_chat_stop_export_quit_and_the_database_holds_every_turn(long_model, terminal_factory, isolated_home):
    export = isolated_home / "chat.json"
    term = terminal_factory(cli("-m", long_model, "-o", "temperature=0"))
    term.wait_for("◆ long · cpu")  # painted, then loaded: the status line names model and device

    term.type("/set max_new_tokens 30")
    term.keys("Enter")
    term.wait_for("max_new_tokens = 30 for this chat")
    term.type("hello there")
    term.keys("Enter")
    term.wait_for("tok/s · first token")  # the first answer streamed in and finished

    term.type("/set min_new_tokens 3500")
    term.keys("Enter")
    term.type("/set max_new_tokens 3500")
    term.keys("Enter")
    term.wait_for("max_new_tokens = 3500 for this chat")
    term.type("tell me more")
    term.keys("Enter")
    term.wait_for("answering · Esc stops")
    time.sleep(0.5)  # let some of the answer arrive
    term.keys("Escape")
    term.wait_for("■ interrupted")

    term.type(f"/export json {export}")
    term.keys("Enter")
    term.wait_for("exported this chat as json")
    term.keys("C-q")
    term.wait_for("EXIT=0")

    from starchat_tui.store import SessionStore

    database = isolated_home / "data" / "sessions.db"
    with sqlite3.connect(database) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with SessionStore(database) as store:
        (session,) = store.list_sessions()
        messages = store.messages(session.id)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "hello there" and messages[2]["content"] == "tell me more"
    assert "interrupted" not in messages[1] and messages[1]["content"]
    assert messages[3]["interrupted"] is True and messages[3]["content"]
    assert session.settings == {"temperature": 0, "max_new_tokens": 3500, "min_new_tokens": 3500}
    assert json.loads(export.read_text())["messages"] == messages


def test_piped_input_is_attached_and_keys_still_come_from_the_terminal(tiny_model, terminal_factory, tmp_path,
                                                                       isolated_home):
    source = tmp_path / "x.py"
    source.write_text("def add(a, b):\n    return a + b\n")
    term = terminal_factory(f"cat {shlex.quote(str(source))} | {cli('-m', tiny_model, '-o', 'temperature=0')}")
    term.wait_for("attached: stdin")
    term.wait_for("◆ tiny · cpu")
    term.type("What does this do?")
    term.keys("Enter")
    term.wait_for("tok/s · first token")
    term.keys("C-q")
    term.wait_for("EXIT=0")

    from starchat_tui.store import SessionStore

    with SessionStore(isolated_home / "data" / "sessions.db") as store:
        (session,) = store.list_sessions()
        first = store.messages(session.id)[0]["content"]
    assert first.startswith("What does this do?\n\nstdin:\n```")
    assert "def add(a, b):\n    return a + b\n```" in first
