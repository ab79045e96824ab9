"""Line mode: the REPL driven for real through a pseudo-terminal on the tiny models, plus its parts.

The pty tests start a small driver that builds settings and calls ``run_repl`` the way the CLI does,
type like a user (Enter is "\\r", Ctrl+J is "\\n", Alt+Enter is ESC "\\r") and check the screen and then
the session store.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import sys
import textwrap

import pytest

from starchat_tui.config import Settings
from starchat_tui.errors import UsageError
from starchat_tui.line.chat import LineChat, run_line_mode
from starchat_tui.line.terminal import make_completer, make_history
from starchat_tui.session.chat_session import ChatSession
from starchat_tui.store import SessionStore

pexpect = pytest.importorskip("pexpect")

DRIVER = textwrap.dedent(
    """
    import json, sys
    from starchat_tui.cli.ask import read_stdin_attachment, stdin_is_piped
    from starchat_tui.config import load_settings
    from starchat_tui.errors import StarchatError
    from starchat_tui.line.chat import run_line_mode

    args = json.loads(sys.argv[1])
    try:
        settings = load_settings({"model": args["model"], "generation": args.get("generation", {})})
        attachments = [read_stdin_attachment()] if stdin_is_piped() else []
        code = run_line_mode(settings, args.get("instruction", ""), attachments, args.get("session"))
    except StarchatError as error:
        print(f"starchat-tui: error: {error}", file=sys.stderr)
        code = error.exit_code
    sys.exit(code)
    """
)
# prompt_toolkit turns bracketed paste on each time it shows the prompt: the prompt is ready.
PROMPT_READY = "\x1b[?2004h"


@pytest.fixture
def driver(tmp_path):
    path = tmp_path / "driver.py"
    path.write_text(DRIVER)
    return path


def spawn(driver, cli_env, tmp_path, *, stdin_text: str | None = None, **args):
    env = {**cli_env, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm", "COLUMNS": "120", "LINES": "40"}
    program, argv = sys.executable, [str(driver), json.dumps(args)]
    if stdin_text is not None:
        # A shell pipes the input in; the terminal stays the pty. (Only here: a Ctrl+C that raises SIGINT
        # would reach the shell too.)
        script = f"printf %s {shlex.quote(stdin_text)} | {shlex.join([program, *argv])}"
        program, argv = "/bin/sh", ["-c", script]
    child = pexpect.spawn(program, argv, env=env, cwd=str(tmp_path), encoding="utf-8", timeout=90,
                          dimensions=(40, 120))
    child.logfile_read = open(tmp_path / "screen.log", "a")  # noqa: SIM115 - read when a test fails
    return child


def ask(child, text: str) -> str:
    """Type ``text`` and Enter at a ready prompt; return what appeared until the next prompt."""
    child.send(text + "\r")
    child.expect_exact(PROMPT_READY)
    return child.before


def only_session(data_dir):
    with SessionStore(data_dir / "sessions.db") as store:
        (session,) = store.list_sessions()
        return session, store.conversation(session.id).messages, store.prompts()


# -- the parts ------------------------------------------------------------------------------------


def test_completer_offers_commands_and_their_arguments(chat):
    from prompt_toolkit.document import Document

    completer = make_completer(chat)

    def complete(text):
        return [c.text for c in completer.get_completions(Document(text), None)]

    assert complete("/re") == ["/retry"]
    assert complete("/show p") == ["/show prompt", "/show params"]
    assert "/set temperature" in complete("/set te")
    assert complete("hello /re") == []


def test_prompt_history_lives_in_the_store(tmp_path):
    import asyncio

    with SessionStore(tmp_path / "s.db") as store:
        store.add_prompt("older")
        history = make_history(store)
        history.append_string("newer")

        async def load():
            return [item async for item in history.load()]

        assert asyncio.run(load()) == ["newer", "older"]
        assert store.prompts() == ["older", "newer"]


def test_without_a_terminal_it_says_to_use_p(capsys):
    with pytest.raises(UsageError, match="no terminal.*use -p"):
        run_line_mode(Settings(model="demo"), "hi", [], None)


@pytest.fixture
def chat(tmp_path):
    store = SessionStore(tmp_path / "s.db")
    out = io.StringIO()
    settings = Settings(model="demo", generation={"max_new_tokens": 64})
    yield LineChat(settings, ChatSession(store, model="demo", options=settings.generation), out=out, err=out)
    store.close()


def test_commands_check_their_input(chat):
    with pytest.raises(UsageError, match="unknown command /sytem: did you mean /system\\?"):
        chat.handle("/sytem hi")
    with pytest.raises(UsageError, match="unknown generation setting 'tempertaure'.*'temperature'"):
        chat.handle("/set tempertaure 0.5")
    with pytest.raises(UsageError, match="temperature must be a number"):
        chat.handle("/set temperature hot")
    with pytest.raises(UsageError, match="show one of prompt, params"):
        chat.handle("/show everything")
    for command in ("/retry", "/edit", "/fork", "/export"):
        with pytest.raises(UsageError, match="(nothing|no message) to"):
            chat.handle(command)
    with pytest.raises(UsageError, match="themes belong to the full-screen app"):
        chat.handle("/theme nord")
    assert chat.chat.options == {"max_new_tokens": 64}, "a refused /set changes nothing"
    assert not chat.leaving
    chat.handle("/exit")
    assert chat.leaving


def test_the_toolbar_shows_the_context_the_next_prompt_takes(tmp_path, tiny_model):
    from starchat_tui.chat.attachments import Attachment
    from starchat_tui.engine import load_engine
    from starchat_tui.line.loader import EngineLoader

    engine = load_engine(tiny_model, device="cpu")
    settings = Settings(model=tiny_model, generation={"temperature": 0, "max_new_tokens": 16})
    with SessionStore(tmp_path / "s.db") as store:
        session = ChatSession(store, model=tiny_model, options=settings.generation)
        session.attachments = [Attachment("big.py", "value = 1\n" * 80)]
        line = LineChat(settings, session, out=io.StringIO(), err=io.StringIO())
        line.loader = EngineLoader(lambda progress: engine)
        line.wait_for_engine()
        pending = session.context_use(engine.renderer)
        assert pending.short() in line.toolbar(), "the attachment is counted before it is sent"
        line.handle("what is this?")
        sent = session.context_use(engine.renderer)
        assert sent.short() in line.toolbar() and sent.tokens > pending.tokens, "the answer counts once it came"
        for number in range(30):
            session.add_user(f"question {number}: " + "why " * 20)
            session.conversation.add("assistant", "because " * 20)
        line.context = None
        assert "old turn(s) left out" in line.toolbar()
        line.handle("and now?")
        assert "note: dropped the " in line.err.getvalue(), "the user is told when turns are left out"


def test_a_line_starting_with_a_path_is_sent_as_a_message(chat):
    from starchat_tui.session import commands

    assert not commands.is_command("/usr/bin/python crashes, why?")
    assert commands.as_message("//help") == "/help"


# -- for real, in a terminal ------------------------------------------------------------------------


@pytest.mark.slow
def test_a_chat_in_line_mode_is_saved_as_it_goes(driver, cli_env, tmp_path, tiny_model, isolated_home):
    child = spawn(driver, cli_env, tmp_path, model=tiny_model, generation={"temperature": 0, "max_new_tokens": 48})
    child.expect("line mode")
    child.expect_exact(PROMPT_READY)
    # Typed before the model is ready: it waits, showing the loading steps, then answers.
    screen = ask(child, "How do I sort a list in Python?")
    assert "waiting for the model" in screen and "ready in" in screen

    assert "system prompt set for this chat" in ask(child, "/system Be brief.")
    screen = ask(child, "/show prompt")
    assert "<|system|>" in screen and "Be brief." in screen and "How do I sort a list in Python?" in screen
    assert "did you mean 'temperature'" in ask(child, "/set tempertaure 1")

    # Ctrl+J and Alt+Enter add lines; Enter sends.
    child.send("line one\nline two\x1b\rline three\r")
    child.expect_exact(PROMPT_READY)
    assert "/retry" in ask(child, "/help")
    ask(child, "/retry")
    child.send("/edit\r")
    child.expect("editing your last message")
    child.expect_exact(PROMPT_READY)
    ask(child, " (edited)")
    assert "exported this chat as json" in ask(child, "/export json chat.json")
    exported = (tmp_path / "chat.json").read_text()
    # A question in the terminal: an existing file is replaced only when the user says so.
    child.send("/export md chat.json\r")
    child.expect_exact("chat.json exists. Replace it?")
    child.send("n\r")
    child.expect_exact(PROMPT_READY)
    assert (tmp_path / "chat.json").read_text() == exported
    ask(child, "//not a command")
    child.send("\x03")  # Ctrl+C at the prompt does not quit
    child.expect_exact("Ctrl+D or /quit leaves")
    child.expect_exact(PROMPT_READY)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    session, messages, prompts = only_session(isolated_home / "data")
    assert session.title == "How do I sort a list in Python?"
    assert session.system == "Be brief." and session.settings == {"temperature": 0, "max_new_tokens": 48}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert messages[3]["content"] == "line one\nline two\nline three (edited)"
    assert messages[5]["content"] == "/not a command"
    assert all(m["content"] and not m.get("interrupted") for m in messages if m["role"] == "assistant")
    assert json.loads((tmp_path / "chat.json").read_text())["messages"] == messages[:-2]
    assert "How do I sort a list in Python?" in prompts and "/system Be brief." in prompts


@pytest.mark.slow
def test_ctrl_c_stops_an_answer_and_keeps_it(driver, cli_env, tmp_path, random_model, isolated_home):
    # The untrained model never ends its turn by itself: only Ctrl+C stops it before 5000 tokens.
    child = spawn(driver, cli_env, tmp_path, model=random_model, generation={"temperature": 0, "max_new_tokens": 5000})
    child.expect_exact(PROMPT_READY)
    child.send("ramble on\r")
    child.expect(r"ready in[^\r\n]*[\r\n]")  # the whole line, so its words are not mistaken for the answer
    child.expect(r"(\S\s*){20}")  # the answer is streaming: 20 visible characters, spaces between allowed
    child.send("\x03")
    child.expect_exact("[interrupted]")
    child.expect_exact(PROMPT_READY)
    new_tokens = int(re.search(r"new_tokens = (\d+)", ask(child, "/show stats")).group(1))
    assert 0 < new_tokens < 5000, "stopped early, by Ctrl+C"
    child.send("/quit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    _, messages, _ = only_session(isolated_home / "data")
    assert messages[-2] == {"role": "user", "content": "ramble on"}
    assert messages[-1]["role"] == "assistant" and messages[-1]["interrupted"] is True
    assert len(messages[-1]["content"]) >= 20


@pytest.mark.slow
def test_continue_a_session_with_piped_input(driver, cli_env, tmp_path, tiny_model, isolated_home):
    with SessionStore(isolated_home / "data" / "sessions.db") as store:
        session = store.create_session(tiny_model, "You review code.", {"temperature": 0, "max_new_tokens": 32})
        store.add_message(session.id, "user", "an earlier question")
        store.add_message(session.id, "assistant", "an earlier answer")
        store.add_prompt("typed in an earlier run")

    child = spawn(driver, cli_env, tmp_path, stdin_text="def f():\n    return 1\n", model="demo", session=session.id[:5])
    child.expect(f"continuing session {session.id}")
    child.expect("attached stdin")
    child.expect_exact(PROMPT_READY)
    child.send("\x1b[A")  # Up: the history is the store's
    child.expect("typed in an earlier run")
    child.send("\x03")
    child.expect_exact(PROMPT_READY)
    ask(child, "what does this do?")
    screen = ask(child, "/show prompt")
    assert "an earlier question" in screen and "def f():" in screen and "You review code." in screen
    child.send("/quit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    again, messages, _ = only_session(isolated_home / "data")
    assert again.id == session.id and again.model == tiny_model, "the session's own model is used"
    question = messages[3]["content"]
    assert question.startswith("what does this do?") and "```" in question and "def f():\n    return 1\n" in question
    assert messages[4]["role"] == "assistant"


@pytest.mark.slow
def test_a_model_that_cannot_load_ends_line_mode_with_exit_3(driver, cli_env, tmp_path):
    child = spawn(driver, cli_env, tmp_path, model=str(tmp_path / "no-such-model"))
    child.expect_exact(PROMPT_READY)
    child.send("half typed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    log = (tmp_path / "screen.log").read_text()
    assert "starchat-tui: error:" in log and "no-such-model" in log and "Traceback" not in log
    with SessionStore(os.path.join(cli_env["STARCHAT_TUI_DATA_DIR"], "sessions.db")) as store:
        assert store.prompts() == ["half typed"], "what was typed is kept in the history"


@pytest.mark.slow
def test_a_code_block_runs_after_asking_and_ctrl_c_stops_it(driver, cli_env, tmp_path, tiny_model, isolated_home):
    with SessionStore(isolated_home / "data" / "sessions.db") as store:
        session = store.create_session(tiny_model)
        store.add_message(session.id, "user", "a slow one")
        store.add_message(session.id, "assistant", "```sh\necho started; sleep 60; echo finished\n```\n")
    child = spawn(driver, cli_env, tmp_path, model=tiny_model, session=session.id)
    child.expect_exact(PROMPT_READY)
    child.send("/run 1\r")
    child.expect_exact("[r]un, [a]lways in this chat, [c]opy, [N]o")
    child.send("r\r")
    child.expect_exact("Ctrl+C stops it")
    child.send("\x03")
    child.expect(r"▶ block 1 · bash · \w+ · exit \d+")
    child.expect_exact(PROMPT_READY)
    assert "finished" not in child.before
    child.send("/quit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_bang_output_goes_with_the_message_and_apply_asks_in_the_terminal(driver, cli_env, tmp_path, tiny_model,
                                                                          isolated_home):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "app.py").write_text("def greet():\n    return 'hi'\n\n\nprint(greet())\n")
    with SessionStore(isolated_home / "data" / "sessions.db") as store:
        session = store.create_session(tiny_model, None, {"temperature": 0, "max_new_tokens": 8})
        store.add_message(session.id, "user", "friendlier?")
        store.add_message(session.id, "assistant", "```python\ndef greet():\n    return 'Hello!'\n```\n")
    child = spawn(driver, cli_env, tmp_path, model=tiny_model, session=session.id)
    child.expect_exact(PROMPT_READY)
    assert "$ echo bang-output (exit 0" in ask(child, "!echo bang-output")
    child.send("/apply 1 app.py\r")
    child.expect_exact("+    return 'Hello!'")
    child.expect_exact("[Apply: y, No: N]")
    child.send("y\r")
    child.expect_exact("applied block 1 to app.py (+1 -1 lines)")
    child.expect_exact(PROMPT_READY)
    assert (tmp_path / "app.py").read_text() == "def greet():\n    return 'Hello!'\n\n\nprint(greet())\n"
    ask(child, "what did it say?")
    child.send("/quit\r")
    child.expect(pexpect.EOF)
    child.close()
    with SessionStore(isolated_home / "data" / "sessions.db") as store:
        sent = store.messages(session.id)[2]["content"]
    assert sent == "what did it say?\n\noutput of `echo bang-output` (exit 0):\n```\nbang-output\n```"
