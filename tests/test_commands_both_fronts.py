"""Every slash command in the registry, run in both front-ends: the full-screen app (Textual's Pilot) and line
mode (the real LineChat, answering its questions from a script), each with a real engine and a real store.
The two must leave the same saved sessions and the same files behind."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
from pathlib import Path

import pytest
from app_helpers import wait_until

from starchat_tui.config import load_settings
from starchat_tui.session.commands import COMMANDS
from starchat_tui.store import SessionStore

SIZE = (100, 36)
FIRST_ANSWER = "Here:\n```python\nprint('one')\n```\n"
SECOND_ANSWER = "Run:\n```sh\necho two\n```\n"
LONG_QUESTION = "q3: " + "why does the list sort this way? " * 12  # turns long enough that a summary is shorter


def seed(store: SessionStore, model: str) -> str:
    """A saved chat of two turns, each answer with a code block."""
    session = store.create_session(model, "be brief", {"temperature": 0, "max_new_tokens": 24})
    for role, text in (("user", "q1"), ("assistant", FIRST_ANSWER), ("user", "q2"), ("assistant", SECOND_ANSWER)):
        store.add_message(session.id, role, text)
    return session.id


APP_PY = "import os\n\n\n@staticmethod\ndef greet(name):\n    return 'hi ' + name\n\n\ndef main():\n    print(greet(os.getcwd()))\n"
APPLY_ANSWER = ('Change it:\n```python\ndef greet(name):\n    return f"Hello, {name}!"\n```\n'
                "And a helper:\n```python\n# file: util.py\ndef double(x):\n    return 2 * x\n```\n")
GREET = 'def greet(name):\n    return f"Hello, {name}!"\n'
APP_PY_APPLIED = APP_PY.replace("@staticmethod\ndef greet(name):\n    return 'hi ' + name\n", GREET)


def in_a_repo(store: SessionStore, session_id: str, files: Path) -> None:
    """A git repository in the scenario's folder, holding app.py and a binary file, as the current folder;
    and a third answer whose blocks 3 and 4 change app.py and create util.py."""
    repo = files / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "app.py").write_text(APP_PY)
    (repo / "blob.bin").write_bytes(b"\x00\x01\x02binary\x00")
    store.add_message(session_id, "user", "q3")
    store.add_message(session_id, "assistant", APPLY_ANSWER)
    os.chdir(repo)


# Each scenario: steps of (line, answers to the questions it asks). "{dir}" is the scenario's own folder.
SCENARIOS: dict[str, list[tuple[str, list[str]]]] = {
    "system": [("/system Be terse.", [])],
    "system-dialog": [("/system", ["From a dialog."])],
    "system-off": [("/system off", [])],
    "set": [("/set temperature 0.5", []), ("/set top_k 3", []), ("/set temperature", [])],
    "unset": [("/set top_k 3", []), ("/unset top_k", [])],
    "settings": [("/settings", ["temperature = 0\nmax_new_tokens = 12"])],
    "show": [("/show params", []), ("/show template", []), ("/show session", []), ("/show prompt", [])],
    "retry": [("/retry", [])],
    "compact": [(LONG_QUESTION, []), ("q4", []), ("/compact", []), ("q5", [])],
    "edit": [("/edit", []), ("q2, said better", [])],
    "fork": [("/fork 1", [])],
    "fork-all": [("/fork", [])],
    "clear": [("/clear", []), ("a new question", [])],
    "copy": [("/copy 1", []), ("/copy", [])],
    "save": [("/save 2 {dir}/two.sh", []), ("/save 1 {dir}/two.sh", ["n"]), ("/save 1 {dir}/one.py", [])],
    "save-replace": [("/save 2 {dir}/x.sh", []), ("/save 1 {dir}/x.sh", ["y"])],
    "save-asks-for-a-path": [("/save 1", ["{dir}/asked.py"])],
    "export": [("/export md {dir}/chat.md", []), ("/export json {dir}/chat.md", ["n"])],
    "run": [("/run 2", ["run"])],
    "model": [("/model {model}", [])],
    "help": [("/help", [])],
    # Files, in a git repository made by in_a_repo:
    "add": [("/add blob.bin app.py", []), ("/add", []), ("what does it do?", [])],
    "mention": [("explain @app.py please", [])],
    "mention-binary": [("explain @blob.bin please", [])],
    "shell": [("!echo hello-from-shell", []), ("/shell echo second", []), ("what did they print?", [])],
    "drop": [("/add app.py", []), ("!echo kept", []), ("/drop app.py", []), ("hello", [])],
    "apply": [("/apply 3 app.py", ["y"]), ("/apply 4", ["y"])],
    "apply-declined": [("/apply 3 app.py", ["n"])],
    "undo": [("/apply 3 app.py", ["y"]), ("/apply 4", ["y"]), ("/undo", [])],
    "undo-all": [("/apply 3 app.py", ["y"]), ("/apply 4", ["y"]), ("/undo", []), ("/undo", [])],
    "apply-outside-refused": [("/apply 3 {dir}/outside.py", ["y", "n"])],
    "apply-outside-confirmed": [("/apply 3 {dir}/outside.py", ["y", "y"])],
    "apply-changed-on-disk": [("/add app.py", []), ("!echo '# changed' >> app.py", []), ("/apply 3", ["n"])],
}
IN_A_REPO = {"add", "mention", "mention-binary", "shell", "drop", "apply", "apply-declined", "undo", "undo-all", "apply-outside-refused",
             "apply-outside-confirmed", "apply-changed-on-disk"}
# Commands whose effect is the front-end itself (its screens, its theme, leaving it): covered in their own tests.
FRONT_ONLY = {"sessions", "theme", "quit"}


def test_every_command_is_in_a_scenario():
    used = {line.split()[0][1:] for steps in SCENARIOS.values() for line, _ in steps if line.startswith("/")}
    assert set(COMMANDS) - FRONT_ONLY <= used


def saved_state(store: SessionStore) -> list[tuple]:
    """Every saved session without its id and dates: what a command changed, comparable across front-ends."""
    sessions = sorted(store.list_sessions(), key=lambda s: (s.created_at, s.title))
    return [(s.model, s.system, s.settings, s.title, store.messages(s.id)) for s in sessions]


def files_in(folder: Path) -> dict[str, str]:
    """The files a scenario wrote, without the session ids and times an export carries."""
    import re

    def plain(text: str) -> str:
        return re.sub(r'^(id|created|updated|created_at|updated_at|exported)(: |": ).*$', r"\1: -", text, flags=re.M)

    return {str(p.relative_to(folder)): plain(p.read_text(errors="replace")) for p in sorted(folder.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(folder).parts}


def fill(text: str, folder: Path, model: str) -> str:
    return text.replace("{dir}", str(folder / "files")).replace("{model}", model)


@pytest.fixture(scope="module")
def engine(tiny_model):
    from starchat_tui.engine import load_engine

    return load_engine(tiny_model, device="cpu")


def settings_for(model: str):
    return load_settings({"model": model, "generation": {"temperature": 0, "max_new_tokens": 24}})


# -- line mode -----------------------------------------------------------------------------------------


def run_in_line_mode(steps, folder: Path, model: str, engine, setup=None, settings=None) -> tuple[list, dict, str]:
    from starchat_tui.line.chat import LineChat
    from starchat_tui.line.loader import EngineLoader
    from starchat_tui.session.chat_session import ChatSession

    with SessionStore(folder / "sessions.db") as store:
        session_id = seed(store, model)
        if setup is not None:
            setup(store, session_id, folder / "files")
        chat = ChatSession.open(store, session_id)
        out = io.StringIO()
        answers: list[str] = []
        line = LineChat(settings or settings_for(model), chat, out=out, err=out,
                        read_line=lambda question, default, multiline: answers.pop(0))
        line.loader = EngineLoader(lambda progress: engine)
        for text, replies in steps:
            answers[:] = [fill(r, folder, model) for r in replies]
            line.handle(fill(text, folder, model))
            assert answers == [], f"{text}: not every question was asked"
        kept = f"\n[kept in the prompt] {line.draft}" if line.draft else ""
        return saved_state(store), files_in(folder / "files"), out.getvalue() + kept


# -- the full-screen app ---------------------------------------------------------------------------------


async def answer_dialog(pilot, reply: str) -> None:
    app = pilot.app
    await wait_until(pilot, lambda: type(app.screen).__name__ in ("AskScreen", "ConfirmScreen", "RunCodeScreen"),
                     what="a question")
    screen = app.screen
    kind = type(screen).__name__
    await pilot.pause()
    if kind == "AskScreen":
        field = screen.query_one("#answer")
        if hasattr(field, "load_text"):
            field.load_text(reply)
        else:
            field.value = reply
        await pilot.press("ctrl+s")
    elif kind == "ConfirmScreen":
        await pilot.press(reply)
    else:
        assert reply == "run"
        await pilot.press("ctrl+r")
    await wait_until(pilot, lambda: app.screen is not screen, what=f"the {kind} to close")


def command_running(app) -> bool:
    return any(w.group == "command" and not w.is_finished for w in app.chat_screen.workers)


async def run_in_app(steps, folder: Path, model: str, engine, setup=None, settings=None) -> tuple[list, dict, list[str]]:
    from starchat_tui.ui.launch import build_app

    shown: list[str] = []
    with SessionStore(folder / "sessions.db") as store:
        session_id = seed(store, model)
        if setup is not None:
            setup(store, session_id, folder / "files")
        app = build_app(settings or settings_for(model), session_id=session_id, store=store, engine=engine)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app.engine is not None and app.chat_screen.is_mounted, what="the engine")
            await pilot.pause()
            screen = app.chat_screen
            for text, replies in steps:
                screen.prompt.text = fill(text, folder, model)
                await pilot.press("enter")
                for reply in replies:
                    await answer_dialog(pilot, fill(reply, folder, model))
                await wait_until(pilot, lambda: not command_running(app) and not screen.generating
                                 and app.loading_model is None, what=f"{text} to finish")
                await pilot.pause()
                if type(app.screen).__name__ in ("TextViewer", "HelpScreen"):
                    shown.append(type(app.screen).__name__)
                    await pilot.press("escape")
                    await wait_until(pilot, lambda: app.screen is screen, what="the viewer to close")
                if type(app.screen).__name__ == "ToolResult" or screen.focused is not screen.prompt:
                    screen.prompt.focus()
            if screen.prompt.text:
                shown.append(f"[kept in the prompt] {screen.prompt.text}")
        return saved_state(store), files_in(folder / "files"), shown


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_command_does_the_same_in_both_front_ends(name, tmp_path, tiny_model, engine, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    steps = SCENARIOS[name]
    setup = in_a_repo if name in IN_A_REPO else None
    results = {}
    for front in ("line", "app"):
        folder = tmp_path / front
        (folder / "files").mkdir(parents=True)
        monkeypatch.chdir(folder / "files")
        if front == "line":
            results[front] = run_in_line_mode(steps, folder, tiny_model, engine, setup)
        else:
            results[front] = asyncio.run(run_in_app(steps, folder, tiny_model, engine, setup))
    (line_state, line_files, line_output), (app_state, app_files, _) = results["line"], results["app"]
    assert app_state == line_state
    assert app_files == line_files
    seeded = [(tiny_model, "be brief", {"temperature": 0, "max_new_tokens": 24}, "q1", [
        {"role": "user", "content": "q1"}, {"role": "assistant", "content": FIRST_ANSWER},
        {"role": "user", "content": "q2"}, {"role": "assistant", "content": SECOND_ANSWER}])]
    # What each command should have done, said once for both front-ends:
    expected_change = {
        "system": lambda s: s[0][1] == "Be terse.",
        "system-dialog": lambda s: s[0][1] == "From a dialog.",
        "system-off": lambda s: s[0][1] is None,
        "set": lambda s: s[0][2] == {"max_new_tokens": 24, "top_k": 3},
        "unset": lambda s: s[0][2] == {"temperature": 0, "max_new_tokens": 24},
        "settings": lambda s: s[0][2] == {"temperature": 0, "max_new_tokens": 12},
        "retry": lambda s: len(s[0][4]) == 4 and s[0][4][3]["content"] != SECOND_ANSWER,
        "edit": lambda s: [m["content"] for m in s[0][4][:3]] == ["q1", FIRST_ANSWER, "q2, said better"]
        and len(s[0][4]) == 4,
        "fork": lambda s: len(s) == 2 and [m["content"] for m in s[1][4]] == ["q1", FIRST_ANSWER],
        "fork-all": lambda s: len(s) == 2 and s[1][4] == s[0][4],
        "clear": lambda s: len(s) == 2 and s[1][4][0]["content"] == "a new question" and s[1][1] == "be brief",
        "model": lambda s: s[0][0] == tiny_model,
        # The summary is saved after the turns it stands in for, which all stay; the next turn follows it.
        "compact": lambda s: s[0][4][:4] == seeded[0][4] and s[0][4][4]["content"] == LONG_QUESTION
        and s[0][4][8]["summary"] is True and s[0][4][8]["covers"] == 6 and s[0][4][8]["content"]
        and s[0][4][9] == {"role": "user", "content": "q5"} and len(s[0][4]) == 11,
    }
    if name in IN_A_REPO:
        seeded[0][4].extend([{"role": "user", "content": "q3"}, {"role": "assistant", "content": APPLY_ANSWER}])
        last_sent = line_state[0][4][-2]["content"] if len(line_state[0][4]) > 6 else ""
        unchanged = {"repo/app.py": APP_PY, "repo/blob.bin": line_files.get("repo/blob.bin")}
    for one_more_turn in ("add", "mention", "shell", "drop"):
        expected_change[one_more_turn] = lambda s: s[0][4][:6] == seeded[0][4] and len(s[0][4]) == 8
    check = expected_change.get(name, lambda s: s == seeded)
    assert check(line_state), line_state
    if name == "add":
        assert last_sent.startswith("what does it do?\n\napp.py:\n```python\nimport os")
        assert "blob.bin" not in last_sent
        assert "not attached: blob.bin looks binary" in line_output
        assert "attached app.py (10 lines," in line_output and "tokens)" in line_output
    if name == "mention":
        assert last_sent.startswith("explain @app.py please\n\napp.py:\n```python\nimport os")
    if name == "mention-binary":
        assert "not sent: @blob.bin: blob.bin looks binary" in line_output and "your message is kept" in line_output
        assert line_output.endswith("[kept in the prompt] explain @blob.bin please")
        assert results["app"][2] == ["[kept in the prompt] explain @blob.bin please"]
    if name == "shell":
        assert "output of `echo hello-from-shell` (exit 0):\n```\nhello-from-shell\n```" in last_sent
        assert "output of `echo second` (exit 0)" in last_sent
        assert "$ echo hello-from-shell (exit 0" in line_output
    if name == "drop":
        assert last_sent == "hello\n\noutput of `echo kept` (exit 0):\n```\nkept\n```"
    if name == "apply":
        assert line_files == {**unchanged, "repo/app.py": APP_PY_APPLIED, "repo/util.py": "def double(x):\n    return 2 * x\n"}
        assert "-@staticmethod" in line_output and '+    return f"Hello, {name}!"' in line_output
        assert "applied block 4 to util.py" in line_output
    if name in ("apply-declined", "undo-all", "apply-outside-refused"):
        assert line_files == unchanged
    if name == "undo":
        assert line_files == {**unchanged, "repo/app.py": APP_PY_APPLIED}
        assert "removed util.py, which /apply 4 had created" in line_output
    if name == "apply-outside-confirmed":
        assert line_files == {**unchanged, "outside.py": GREET}
    if name == "apply-outside-refused":
        assert "not applied:" in line_output and "outside the project folder" in line_output
    if name == "apply-changed-on-disk":
        assert line_files == {**unchanged, "repo/app.py": APP_PY + "# changed\n"}
        assert "not applied: app.py changed since you attached it" in line_output
    if name == "save":
        assert line_files == {"one.py": "print('one')\n", "two.sh": "echo two\n"}
    if name == "save-replace":
        assert line_files == {"x.sh": "print('one')\n"}
    if name == "save-asks-for-a-path":
        assert line_files == {"asked.py": "print('one')\n"}
    if name == "export":
        assert list(line_files) == ["chat.md"] and "q2" in line_files["chat.md"] and line_files["chat.md"].startswith("---\nstarchat-tui-transcript")
    if name == "run":
        assert "two" in line_output and "exit 0" in line_output
    if name in ("show", "help"):
        assert results["app"][2], "the app showed the text"
        assert "temperature" in line_output or "/help" in line_output


def test_a_shell_command_that_runs_too_long_is_stopped_with_all_it_started(tmp_path, monkeypatch):
    import time

    from starchat_tui.line.chat import LineChat
    from starchat_tui.session import workspace
    from starchat_tui.session.chat_session import ChatSession

    monkeypatch.setattr(workspace, "SHELL_TIMEOUT", 1.0)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    line = LineChat(settings_for("demo"), ChatSession(None, model="demo"), out=out, err=out)
    started = time.monotonic()
    line.handle("!sleep 30 & echo $! > pid; echo started; wait; echo never")
    assert time.monotonic() - started < 10
    assert "$ sleep 30 & echo $! > pid; echo started; wait; echo never (stopped after 1 s;" in out.getvalue()
    assert out.getvalue().endswith("/drop removes it)\nstarted\n")  # and not "never": the shell was stopped
    pid = int((tmp_path / "pid").read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    [attached] = line.chat.attachments
    assert attached.text == "started\n" and "stopped after 1 s" in attached.source


@pytest.mark.slow
def test_auto_compact_in_config_compacts_after_an_answer_in_both_front_ends(tmp_path, tiny_model, engine, monkeypatch):
    """config.toml's [chat] auto_compact: past that share of the prompt budget, an answer is followed by /compact."""
    settings = settings_for(tiny_model)
    settings.sections["chat"] = {"auto_compact": 0.05}
    results = {}
    for front in ("line", "app"):
        folder = tmp_path / front
        (folder / "files").mkdir(parents=True)
        if front == "line":
            results[front] = run_in_line_mode([(LONG_QUESTION, []), ("q4", [])], folder, tiny_model, engine, settings=settings)
        else:
            results[front] = asyncio.run(run_in_app([(LONG_QUESTION, []), ("q4", [])], folder, tiny_model, engine,
                                                    settings=settings))
    line_state, app_state = results["line"][0], results["app"][0]
    assert app_state == line_state
    messages = line_state[0][4]
    assert [m["content"] for m in messages[:5]] == ["q1", FIRST_ANSWER, "q2", SECOND_ANSWER, LONG_QUESTION]
    summaries = [(i, m["covers"]) for i, m in enumerate(messages) if m.get("summary")]
    assert summaries == [(8, 6)] and len(messages) == 9, "after q4's answer, once: turns 1 to 3 summarised"
    assert "auto_compact = 0.05 in config.toml: compacting" in results["line"][2]
    assert "compacted: a summary stands in for the first 3 turn(s)" in results["line"][2]


def test_a_bad_auto_compact_setting_is_refused_at_start(tmp_path, tiny_model):
    from starchat_tui.errors import UsageError
    from starchat_tui.session.chat_session import ChatSession

    settings = settings_for(tiny_model)
    settings.sections["chat"] = {"auto_compact": 80}
    with SessionStore(tmp_path / "s.db") as store, pytest.raises(UsageError, match="between 0 and 1, for example 0.8"):
        ChatSession.choose(store, settings)
