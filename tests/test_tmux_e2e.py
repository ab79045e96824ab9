"""The real CLI in a real terminal (tmux): type, watch the answer stream, stop one, export, quit, check the db.

This is the user's path end to end: the installed entry point, Textual's real terminal driver, keys
sent as a terminal sends them, and the session database read back afterwards.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import time

import pytest
from terminal import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def long_model(tmp_path_factory) -> str:
    """An untrained tiny model with room for long answers: it rambles until told to stop."""
    from starchat_tui.demo.tiny import build_tiny_model

    return str(build_tiny_model(tmp_path_factory.mktemp("e2e") / "long", train_steps=0, seed=1, n_positions=4096))


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


def test_apply_a_block_to_a_file_after_the_diff_then_undo_it(tiny_model, terminal_factory, tmp_path, isolated_home):
    import subprocess

    from starchat_tui.store import SessionStore

    repository = tmp_path / "repo"
    repository.mkdir()
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    app_file = repository / "app.py"
    original = "import sys\n\n\ndef greet(name):\n    return 'hi ' + name\n\n\nprint(greet(sys.argv[1]))\n"
    app_file.write_text(original)
    answer = "Use an f-string:\n\n```python\n# file: app.py\ndef greet(name):\n    return f\"Hello, {name}!\"\n```\n"
    with SessionStore(isolated_home / "data" / "sessions.db") as store:
        session = store.create_session(tiny_model, None, {"temperature": 0})
        store.add_message(session.id, "user", "Make greet friendlier.")
        store.add_message(session.id, "assistant", answer)

    command = cli("-m", tiny_model, "--session", session.id)
    term = terminal_factory(f"sh -c {shlex.quote(f'cd {shlex.quote(str(repository))} && exec {command}')}")
    term.wait_for("◆ tiny · cpu")
    term.type("/apply 1")
    term.keys("Enter")
    screen = term.wait_for("return 'hi ' + name")  # the diff, with the old line, before anything is written
    assert "b/app.py" in screen
    assert app_file.read_text() == original
    term.keys("y")
    term.wait_for("applied block 1 to app.py")
    assert app_file.read_text() == original.replace("'hi ' + name", 'f"Hello, {name}!"')
    term.type("/undo")
    term.keys("Enter")
    term.wait_for("app.py is back as it was")
    assert app_file.read_text() == original
    term.keys("C-q")
    term.wait_for("EXIT=0")
