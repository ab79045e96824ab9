"""The chat app driven with Textual's Pilot on tiny real models, a real session store and real files.

Every test runs the real app: the real engine generates, the real store saves, and the tests read both
back. Waits poll for a condition (``wait_until``) instead of sleeping a fixed time.
"""

from __future__ import annotations

import asyncio

import pytest
from app_helpers import SIZE, Paced, ask, make_app, ready, running_app, screen_text, wait_until

from starchat_tui.config import config_file, load_settings

# -- engines -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_engine(tiny_model):
    from starchat_tui.engine import load_engine

    return load_engine(tiny_model, device="cpu")


@pytest.fixture(scope="module")
def rambling_engine(random_model):
    from starchat_tui.engine import load_engine

    return Paced(load_engine(random_model, device="cpu"))


@pytest.fixture(scope="module")
def remote_rambler(random_model, tmp_path_factory):
    """The rambling model in an engine process, as the app runs it (1000 tokens take it over a second)."""
    import os
    import sys

    from starchat_tui.engine.process import EngineProcess

    engine = EngineProcess([sys.executable, "-m", "starchat_tui.engine.child"],
                           tmp_path_factory.mktemp("logs") / "engine.log", env=dict(os.environ, HF_HUB_OFFLINE="1"))
    engine.load(random_model, device="cpu")
    yield engine
    engine.close()


# -- loading and first paint -------------------------------------------------------------------------


async def test_the_screen_paints_before_the_model_loads_and_a_message_sent_meanwhile_is_answered(
    tiny_model, monkeypatch, process_gone
):
    import os
    import threading

    import starchat_tui.engine.process as engine_process

    # Hold the real loader back until the test has typed and sent, so "meanwhile" is certain.
    gate = threading.Event()
    real_spawn = engine_process.spawn_engine_process

    def gated_spawn():
        gate.wait(60)
        return real_spawn()

    monkeypatch.setattr(engine_process, "spawn_engine_process", gated_spawn)
    app = make_app(tiny_model)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.chat_screen
        steps: list[str] = []
        screen.status_line.watch(screen.status_line, "loading_step", lambda step: steps.append(step))
        await pilot.pause()
        assert app.engine is None and app.loading_model == tiny_model
        assert tiny_model in screen_text(app)  # painted, naming the model being loaded
        await pilot.press(*"hello", "enter")  # typing and sending work meanwhile
        await wait_until(pilot, lambda: screen.chat.session_id is not None, what="the message to be saved")
        assert screen.chat.store.messages(screen.chat.session_id) == [{"role": "user", "content": "hello"}]
        assert "waiting for" in screen_text(app)
        gate.set()
        await wait_until(pilot, lambda: len(screen.chat.messages) >= 2 and not screen.generating,
                         what="the answer to the early message")
        assert any("loading weights" in step and tiny_model in step for step in steps)
        assert screen.chat.messages[1]["role"] == "assistant"
        status = screen.status_line
        assert status.model == "tiny" and status.device == "cpu" and status.dtype == "float32"
        engine_pid = app.engine.pid
        assert engine_pid != os.getpid(), "the model runs in a process of its own"
        await pilot.press("ctrl+q")
    assert process_gone(engine_pid), "quitting the app must end its engine process"


async def test_what_the_first_answer_needs_is_imported_while_the_model_loads(tiny_model):
    """Importing transformers for the generation settings took 0.7 s on the UI thread at the first Enter."""
    from starchat_tui.engine.generation import known_settings

    known_settings.cache_clear()
    async with running_app(tiny_model) as pilot:
        assert known_settings.cache_info().currsize == 1
        await pilot.press("ctrl+q")


def test_quitting_while_the_model_loads_ends_the_loading_process_at_once(tiny_model, process_gone):
    import time

    pids = []

    async def quit_mid_load() -> None:
        app = make_app(tiny_model)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: app._loading_engine is not None, what="the engine process")
            pids.append(app._loading_engine.pid)
            await pilot.press("ctrl+q")

    started = time.monotonic()
    asyncio.run(quit_mid_load())  # returns once the loading worker has finished too
    # Loading this model takes seconds (importing torch alone does); waiting it out is what this forbids.
    assert time.monotonic() - started < 2.5
    assert process_gone(pids[0]), "the loading engine process outlived the app"


async def test_a_model_that_cannot_load_is_reported_and_the_app_stays_usable():
    app = make_app("/nonexistent/model-folder")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: bool(app.engine_error), what="the load error")
        assert "model-folder" in app.chat_screen.status_line.error
        await wait_until(pilot, lambda: "Load another with /model NAME" in screen_text(app), what="the note")
        await pilot.press("ctrl+q")
    assert app.return_code == 3


# -- chatting ----------------------------------------------------------------------------------------


async def test_an_answer_streams_in_is_saved_and_fills_the_status_line(tiny_model, tiny_engine):
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        await ask(pilot, "Write a function that adds two numbers.")
        screen = app.chat_screen
        reply = screen.chat.messages[-1]
        assert reply["role"] == "assistant" and reply["content"]
        store = screen.chat.store
        assert store.messages(screen.chat.session_id) == screen.chat.messages
        status = screen.status_line
        await wait_until(pilot, lambda: status.context == screen.chat.context_use(tiny_engine.renderer),
                         what="the context count of the whole conversation")
        assert status.context.tokens > tiny_engine.stats.prompt_tokens, "the reply counts too"
        assert status.context.limit == tiny_engine.context_limit
        assert status.tokens_per_s == tiny_engine.stats.tokens_per_s > 0
        text = screen_text(app)
        assert "tok/s" in text and status.context.short() in text
        await ask(pilot, "Write a function that adds two numbers.")
        assert screen.status_line.cached_tokens > 0  # the second turn reuses the first turn's cache


async def test_the_status_line_counts_pending_attachments(tiny_model, tiny_engine):
    from starchat_tui.chat.attachments import Attachment

    attached = [Attachment("big.py", "value = 1\n" * 80)]
    async with running_app(tiny_model, tiny_engine, attachments=attached) as pilot:
        screen = pilot.app.chat_screen
        status = screen.status_line
        await wait_until(pilot, lambda: status.context is not None, what="the context count")
        assert status.context == screen.chat.context_use(tiny_engine.renderer)
        pending, screen.chat.attachments = screen.chat.attachments, []
        bare = screen.chat.context_use(tiny_engine.renderer).tokens
        screen.chat.attachments = pending
        assert status.context.tokens > bare + 80, "the attachment is counted before it is sent"
        assert status.context.short() in screen_text(pilot.app)


async def test_turns_left_out_are_shown_before_and_after_sending(tiny_model, tiny_engine, tmp_path):
    from starchat_tui.store import SessionStore

    with SessionStore(tmp_path / "s.db") as store:
        session = store.create_session(tiny_model, None, {"temperature": 0, "max_new_tokens": 16})
        for number in range(30):
            store.add_message(session.id, "user", f"question {number}: " + "why " * 20)
            store.add_message(session.id, "assistant", "because " * 20)
        async with running_app(tiny_model, tiny_engine, store=store, session_id=session.id) as pilot:
            screen = pilot.app.chat_screen
            await wait_until(pilot, lambda: screen.status_line.context is not None, what="the context count")
            assert screen.status_line.context.left_out > 0
            assert "old turn(s) left out" in screen_text(pilot.app)
            await ask(pilot, "and now?")
            notes = [w for w in screen.query("NoteMessage") if "oldest turn(s)" in str(w.render())]
            assert notes, "the answer is followed by a note saying turns were left out"


@pytest.mark.parametrize("key", ["escape", "ctrl+c"])
async def test_a_key_stops_an_answer_in_the_engine_process_which_stays_marked_interrupted(
    random_model, remote_rambler, key
):
    app = make_app(random_model, remote_rambler, generation={"temperature": 0, "min_new_tokens": 1000,
                                                                "max_new_tokens": 700})
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = app.chat_screen
        screen.prompt.text = "ramble"
        app.simulate_key("enter")  # not pilot.press, which may wait for the whole answer
        await wait_until(pilot, lambda: screen.generating and len(screen.transcript.query("MarkdownBlock")) > 0,
                         what="streaming to start")
        await pilot.press(key)
        await wait_until(pilot, lambda: not screen.generating, what="the stop")
        reply = screen.chat.messages[-1]
        assert reply["interrupted"] is True and reply["content"]
        assert remote_rambler.stats.new_tokens < 1000
        saved = screen.chat.store.messages(screen.chat.session_id)[-1]
        assert saved == reply
        await wait_until(pilot, lambda: "■ interrupted" in screen_text(app), what="the interrupted mark")
        # The partial answer stays in context: the next prompt holds it.
        assert reply["content"] in remote_rambler.renderer.render_prompt(screen.chat.conversation.messages)


async def test_a_message_typed_while_answering_is_queued_then_sent_or_given_back_by_esc(random_model, rambling_engine):
    generation = {"temperature": 0, "min_new_tokens": 150, "max_new_tokens": 150}
    slower = Paced(rambling_engine._engine, delay=0.05)  # 7.5 s an answer: time to type ahead, even on a loaded CI machine
    async with running_app(random_model, slower, generation=generation) as pilot:
        app = pilot.app
        screen = app.chat_screen

        async def start(text: str) -> None:
            screen.prompt.text = text
            app.simulate_key("enter")
            await wait_until(pilot, lambda: screen.generating, what="streaming to start")

        # Queued while the first answer streams, then sent by itself when it ends.
        await start("first")
        screen.prompt.text = "second"
        app.simulate_key("enter")
        await wait_until(pilot, lambda: "queued: second" in screen_text(app), what="the queued note")
        assert screen.prompt.text == "" and screen.status_line.queued == 1
        assert "1 queued" in str(screen.status_line.status_text())
        await wait_until(pilot, lambda: [m["content"] for m in screen.chat.messages if m["role"] == "user"]
                         == ["first", "second"], timeout=60, what="the queued message to be sent")
        await wait_until(pilot, lambda: len(screen.chat.messages) == 4 and not screen.generating, timeout=60,
                         what="the second answer")
        assert screen.status_line.queued == 0 and not screen.chat.messages[-1].get("interrupted")

        # Esc stops the answer and gives the queued message back to the editor, before a new draft.
        await start("third")
        screen.prompt.text = "fourth"
        app.simulate_key("enter")
        await wait_until(pilot, lambda: screen.status_line.queued == 1, what="the queue")
        screen.prompt.text = "a draft"
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.generating, what="the stop")
        assert screen.prompt.text == "fourth\n\na draft"
        assert screen.chat.messages[-1]["interrupted"] is True
        assert [m["content"] for m in screen.chat.messages if m["role"] == "user"] == ["first", "second", "third"]
        saved = screen.chat.store.messages(screen.chat.session_id)
        assert [m["content"] for m in saved if m["role"] == "user"] == ["first", "second", "third"]


async def test_esc_stops_a_summary_and_the_chat_stays_as_it_was(random_model, rambling_engine, tmp_path):
    from starchat_tui.store import SessionStore

    with SessionStore(tmp_path / "s.db") as store:
        session = store.create_session(random_model, None, {"temperature": 0, "min_new_tokens": 700,
                                                            "max_new_tokens": 700})
        for role, text in (("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2")):
            store.add_message(session.id, role, text)
        async with running_app(random_model, rambling_engine, store=store, session_id=session.id) as pilot:
            screen = pilot.app.chat_screen
            before = list(screen.chat.messages)
            screen.prompt.text = "/compact"
            pilot.app.simulate_key("enter")
            await wait_until(pilot, lambda: screen.chat.summarising, what="the summary to start")
            assert "summarising the older turns · Esc stops it" in screen.status_line.loading_step
            screen.prompt.text = "a message meanwhile"
            pilot.app.simulate_key("enter")  # handled before the Esc below, with no pause to let the summary end
            await pilot.press("escape")
            assert screen.prompt.text == "a message meanwhile", "not sent while the engine writes the summary"
            await wait_until(pilot, lambda: not screen.status_line.loading_step, what="the stop")
            assert rambling_engine.stats.new_tokens < 700, "stopped, not run to its end"
            assert screen.chat.messages == before and store.messages(session.id) == before, "nothing was added"


async def test_enter_sends_ctrl_j_adds_a_line_and_a_paste_arrives_whole(tiny_model, tiny_engine):
    from textual import events

    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        await pilot.press(*"first", "ctrl+j", *"second")
        assert screen.prompt.text == "first\nsecond"
        await pilot.press("alt+enter", *"third")
        assert screen.prompt.text == "first\nsecond\nthird"
        screen.prompt.clear()
        app.post_message(events.Paste("line one\nline two\nline three"))  # as the terminal driver does
        await pilot.pause()
        assert screen.chat.messages == []  # a paste never sends
        assert screen.prompt.text == "line one\nline two\nline three"
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(screen.chat.messages) >= 2 and not screen.generating, what="the answer")
        assert screen.chat.messages[0]["content"] == "line one\nline two\nline three"


async def test_regenerate_edit_and_resend_fork_and_clear(tiny_model, tiny_engine):
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        store = screen.chat.store
        await ask(pilot, "What does len do?")
        await ask(pilot, "hello")
        first_session = screen.chat.session_id

        await pilot.press("alt+r")  # regenerate
        await wait_until(pilot, lambda: not screen.generating and len(screen.chat.messages) == 4, what="regenerate")
        assert [m["role"] for m in store.messages(first_session)] == ["user", "assistant", "user", "assistant"]
        assert len(screen.transcript.query("AssistantMessage")) == 2

        await pilot.press("alt+e")  # edit the last message
        assert screen.prompt.text == "hello"
        screen.prompt.text = "Reverse a string in Python."
        await pilot.press("enter")
        await wait_until(pilot, lambda: not screen.generating and len(screen.chat.messages) == 4, what="resend")
        contents = [m["content"] for m in store.messages(first_session)]
        assert contents[2] == "Reverse a string in Python." and "hello" not in contents
        assert len(screen.transcript.query("UserMessage")) == 2

        screen.prompt.text = "/fork 1"
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.chat.session_id != first_session, what="the fork")
        assert [m["content"] for m in screen.chat.messages][:1] == ["What does len do?"]
        assert len(screen.chat.messages) == 2
        assert len(store.messages(first_session)) == 4  # the original is untouched

        forked = screen.chat.session_id
        await pilot.press("ctrl+l")  # clear: a fresh chat, the old one stays saved
        await wait_until(pilot, lambda: screen.chat.session_id is None, what="the clear")
        assert screen.chat.messages == [] and len(store.messages(forked)) == 2
        assert len(screen.transcript.query("UserMessage")) == 0


async def test_escape_cancels_an_edit_and_restores_the_draft(tiny_model, tiny_engine):
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        await ask(pilot, "hello")
        screen.prompt.text = "my draft"
        await pilot.press("alt+e")
        assert screen.prompt.text == "hello" and screen.editing == 0
        await pilot.press("escape")
        assert screen.editing is None and screen.prompt.text == "my draft"
        assert len(screen.chat.messages) == 2


async def test_prompt_history_persists_and_is_searchable(tiny_model, tiny_engine):
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        await ask(pilot, "What does len do?")
        await ask(pilot, "hello")
    async with running_app(tiny_model, tiny_engine) as pilot:  # a new run reads the history from the store
        app = pilot.app
        prompt = app.chat_screen.prompt
        prompt.text = "draft"
        await pilot.press("up")
        assert prompt.text == "hello"
        await pilot.press("up")
        assert prompt.text == "What does len do?"
        await pilot.press("down", "down")
        assert prompt.text == "draft"
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "PickerScreen", what="the history search")
        await pilot.press(*"len", "enter")
        await wait_until(pilot, lambda: app.screen is app.chat_screen, what="the search to close")
        assert prompt.text == "What does len do?"


# -- slash commands and the palette ------------------------------------------------------------------


async def test_slash_completion_and_generation_settings(tiny_model, tiny_engine):
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        await pilot.press(*"/se")
        assert screen.menu.display and screen.menu.completions[0].value == "/set "
        await pilot.press("tab", *"temperature 0.5", "enter")
        await pilot.pause()
        assert screen.chat.options["temperature"] == 0.5
        await ask(pilot, "hello")
        assert screen.chat.store.get_session(screen.chat.session_id).settings["temperature"] == 0.5
        # Enter right after fast typing: the menu still offers "/set max_new_tokens" (it follows edits a
        # message later), and must not replace what was typed after it.
        screen.prompt.text = "/set max_new"
        await wait_until(pilot, lambda: screen.menu.display and screen.menu.completions, what="the menu")
        screen.prompt.text = "/set max_new_tokens 30"
        screen.prompt.action_send()
        await wait_until(pilot, lambda: screen.chat.options.get("max_new_tokens") == 30, what="the setting")
        screen.prompt.text = "/set temprature 1"
        await pilot.press("enter")
        await pilot.pause()
        assert "temprature" in " ".join(str(n.message) for n in app._notifications)
        assert "temprature" not in screen.chat.options
        screen.prompt.text = "/frobnicate"
        await pilot.press("enter")
        await pilot.pause()
        assert "unknown command /frobnicate" in " ".join(str(n.message) for n in app._notifications)


async def test_system_prompt_and_show_prompt_params_template(tiny_model, tiny_engine):
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        screen.prompt.text = "/system You are terse."
        await pilot.press("enter")
        await ask(pilot, "hello")
        assert screen.chat.conversation.system == "You are terse."
        assert screen.chat.store.get_session(screen.chat.session_id).system == "You are terse."
        for what, expected in (("prompt", "You are terse."), ("params", "temperature = 0\n"), ("template", "<|system|>")):
            screen.prompt.text = f"/show {what}"
            await pilot.press("enter")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "TextViewer", what=f"/show {what}")
            assert expected in app.screen.text
            await pilot.press("escape")
            await wait_until(pilot, lambda: app.screen is app.chat_screen, what="the viewer to close")
        expected_prompt = tiny_engine.renderer.render_prompt(screen.chat.conversation.messages)
        screen.prompt.text = "/show prompt"
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "TextViewer", what="/show prompt")
        assert app.screen.text == expected_prompt


async def test_command_palette_reaches_every_chat_action(tiny_model, tiny_engine):
    from starchat_tui.ui.palette import PALETTE

    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        for entry in PALETTE:  # every entry names an action that exists
            namespace, _, name = entry.action.rpartition(".")
            target = app if namespace == "app" else screen
            assert hasattr(target, f"action_{name.split('(')[0]}"), entry.action
        await ask(pilot, "hello")
        await pilot.press("ctrl+p")
        await pilot.press(*"Regenerate the last")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: not screen.generating and len(screen.chat.messages) == 2
                         and app.screen is screen, what="regenerate from the palette")
        assert len(screen.chat.store.messages(screen.chat.session_id)) == 2


async def test_keys_remapped_in_config_toml_take_effect(tiny_model, tiny_engine):
    config_file().write_text('[keys]\nregenerate = "f5"\n')
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        await ask(pilot, "hello")
        answers_before = screen.chat.store.messages(screen.chat.session_id)
        stats_before = tiny_engine.stats  # the engine records a new stats object for every answer
        await pilot.press("f5")
        await wait_until(pilot, lambda: tiny_engine.stats is not stats_before and not screen.generating,
                         what="f5 to regenerate")
        assert len(screen.chat.store.messages(screen.chat.session_id)) == len(answers_before)
        await pilot.press("alt+r")  # the default key no longer regenerates
        await pilot.pause(0.3)
        assert not screen.generating and tiny_engine.stats is not stats_before


def test_a_bad_keys_table_or_theme_stops_the_launch_with_one_line(tiny_model):
    from starchat_tui.errors import UsageError

    config_file().write_text('[keys]\nregenrate = "f5"\n')
    with pytest.raises(UsageError, match="regenerate"):
        make_app(tiny_model)
    config_file().write_text('theme = "neon"\n')
    with pytest.raises(UsageError, match="theme 'neon' not found"):
        make_app(tiny_model)


def test_continue_and_session_flags_choose_the_saved_chat(tiny_model):
    from starchat_tui.errors import UsageError
    from starchat_tui.store import SessionStore

    with pytest.raises(UsageError, match="no saved session to continue"):
        make_app(tiny_model, continue_last=True)
    with pytest.raises(UsageError, match="no session 'abc'"):
        make_app(tiny_model, session_id="abc")
    store = SessionStore()
    older = store.create_session("m")
    store.add_message(older.id, "user", "older")
    newer = store.create_session("m")
    store.add_message(newer.id, "user", "newer")
    assert make_app(tiny_model, continue_last=True).chat_screen.chat.session_id == newer.id
    assert make_app(tiny_model, session_id=older.id[:5]).chat_screen.chat.messages[0]["content"] == "older"


# -- code blocks -------------------------------------------------------------------------------------


async def test_code_blocks_are_numbered_and_copied_saved_from_keys_and_commands(tiny_model, tiny_engine, tmp_path,
                                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        await ask(pilot, "Write a function that adds two numbers.")
        await ask(pilot, "Reverse a string in Python.")
        from starchat_tui.chat.blocks import number_blocks

        blocks = number_blocks(screen.chat.messages)
        assert len(blocks) >= 2
        fences = list(screen.transcript.query("CodeFence"))
        assert [f.number for f in fences] == [b.number for b in blocks]
        assert f" {blocks[-1].number} " in screen_text(app)

        screen.prompt.text = "/copy 1"
        await pilot.press("enter")
        await pilot.pause()
        assert app.clipboard == blocks[0].code

        await pilot.press("alt+up")  # the block cursor: last block
        assert app.focused is fences[-1]
        await pilot.press("c")
        assert app.clipboard == blocks[-1].code
        await pilot.press("s")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "AskScreen", what="the save dialog")
        await pilot.press("enter")  # accept the suggested name
        await wait_until(pilot, lambda: (tmp_path / blocks[-1].suggested_name()).exists(), what="the file")
        assert (tmp_path / blocks[-1].suggested_name()).read_text() == blocks[-1].code + "\n"
        await pilot.press("escape")
        assert app.focused is screen.prompt

        screen.prompt.text = f"/save 1 {tmp_path / 'out' / 'add.py'}"
        await pilot.press("enter")
        await wait_until(pilot, lambda: (tmp_path / "out" / "add.py").exists(), what="/save")
        screen.prompt.text = f"/save 1 {tmp_path / 'out' / 'add.py'}"
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", what="the overwrite question")
        await pilot.press("n")
        screen.prompt.text = "/copy 99"
        await pilot.press("enter")
        await pilot.pause()
        assert f"no code block 99: this chat has blocks 1 to {len(blocks)}" in " ".join(
            str(n.message) for n in app._notifications)


async def test_export_writes_the_chat_as_markdown_and_json(tiny_model, tiny_engine, tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        await ask(pilot, "What does len do?")
        screen.prompt.text = "/export"
        await pilot.press("enter")
        exported = tmp_path / f"starchat-{screen.chat.session_id}.md"
        await wait_until(pilot, exported.exists, what="the Markdown export")
        assert "What does len do?" in exported.read_text()
        screen.prompt.text = f"/export json {tmp_path / 'chat.json'}"
        await pilot.press("enter")
        await wait_until(pilot, (tmp_path / "chat.json").exists, what="the JSON export")
        assert json.loads((tmp_path / "chat.json").read_text())["messages"] == screen.chat.messages


async def test_model_output_is_shown_inert(tiny_model, tiny_engine):
    from starchat_tui.store import SessionStore

    store = SessionStore()
    session = store.create_session("tiny")
    store.add_message(session.id, "user", "show me colours")
    store.add_message(session.id, "assistant", "red: \x1b[31mRED\x1b[0m bell\x07\n```python\nprint('\x1b]52;c;aGk=\x07')\n```")
    async with running_app(tiny_model, tiny_engine, session_id=session.id) as pilot:
        app = pilot.app
        text = screen_text(app)
        assert "␛[31mRED␛[0m bell^G" in text
        assert "print('␛]52;c;aGk=^G')" in text
        assert "\x1b" not in text and "\x07" not in text


async def test_a_long_code_block_streams_in_drawing_only_its_new_lines(tiny_model, tiny_engine):
    """Redrawing a growing block on every flush is what makes long code answers stutter; only new lines may be drawn."""
    from starchat_tui.ui.widgets.answer import AssistantMessage
    from starchat_tui.ui.widgets.code_fence import CodeLines

    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        transcript = app.chat_screen.transcript
        transcript.follow()
        widget = await transcript.add(lambda: AssistantMessage("", streaming=True))
        stream = widget.start_stream()
        await stream.write("Here it is:\n\n```python\n")
        lines = [f"value_{n} = compute({n}) * {n}" for n in range(300)]
        drawn_per_flush = []
        for start in range(0, len(lines), 10):
            view = widget.query(CodeLines).first() if widget.query(CodeLines) else None
            before = view.lines_drawn if view else 0
            await stream.write("\n".join(lines[start:start + 10]) + "\n")
            await pilot.pause()
            await pilot.pause()
            drawn_per_flush.append(widget.query_one(CodeLines).lines_drawn - before)
        await stream.write("```\n")
        await widget.end_stream(stream, interrupted=False, footer="")
        view = widget.query_one(CodeLines)
        # The ten new lines and the one before them, however long the block has grown (a block redrawn
        # whole would draw every line on screen: 30 here).
        assert max(drawn_per_flush[5:]) <= 11, drawn_per_flush
        assert sum(drawn_per_flush) < 2 * len(lines)
        await wait_until(pilot, lambda: "value_299 = compute(299) * 299" in screen_text(app), what="the last line")
        fence = widget.query_one("CodeFence")
        assert fence.code.rstrip("\n") == "\n".join(lines)
        assert [line.plain for line in view._lines] == lines


# -- themes ------------------------------------------------------------------------------------------


async def test_theme_switches_live_recolours_code_and_is_remembered(tiny_model, tiny_engine):
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        await ask(pilot, "Write a function that adds two numbers.")
        fence = app.chat_screen.transcript.query("CodeFence").last()
        dark_spans = {str(s.style) for s in fence._highlighted_code.spans}
        assert fence._style_name == "monokai"
        app.chat_screen.prompt.text = "/theme starchat-light"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.theme == "starchat-light", what="the theme")
        await pilot.pause()
        assert fence._style_name == "vs"
        assert {str(s.style) for s in fence._highlighted_code.spans} != dark_spans
    assert load_settings().theme == "starchat-light"
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        assert app.theme == "starchat-light"


# -- sessions ----------------------------------------------------------------------------------------


async def test_sessions_screen_opens_renames_deletes_and_searches(tiny_model, tiny_engine):
    from starchat_tui.store import SessionStore

    store = SessionStore()
    for title, words in (("parsing", "how do I parse json"), ("sorting", "sort a list of tuples"),
                         ("doomed", "delete me")):
        session = store.create_session("tiny")
        store.add_message(session.id, "user", f"{title}: {words}")
        store.add_message(session.id, "assistant", "answer")
    async with running_app(tiny_model, tiny_engine, store=store) as pilot:
        app = pilot.app
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "SessionsScreen", what="the sessions screen")
        table = app.screen.query_one("DataTable")
        assert table.row_count == 3
        await pilot.press("slash", *"tupl")
        await pilot.pause()
        assert table.row_count == 1 and "sorting" in str(table.get_row_at(0))
        await pilot.press("enter")  # to the list
        await pilot.press("f2")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "AskScreen", what="rename")
        app.screen.query_one("Input").value = "tuple sorting"
        await pilot.press("enter")
        await pilot.pause()
        renamed = [s for s in store.list_sessions() if s.title == "tuple sorting"]
        assert len(renamed) == 1
        app.screen.query_one("#search").value = "delete"
        await pilot.pause()
        table.focus()
        await pilot.press("delete")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", what="the delete question")
        await pilot.press("y")
        await wait_until(pilot, lambda: len(store.list_sessions()) == 2, what="the delete")
        app.screen.query_one("#search").value = "parse"
        await pilot.pause()
        table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen is app.chat_screen, what="the session to open")
        assert app.chat_screen.chat.messages[0]["content"] == "parsing: how do I parse json"
        assert len(app.chat_screen.transcript.query("UserMessage")) == 1


async def test_a_long_session_mounts_only_its_newest_turns_and_expands_on_demand(tiny_model, tiny_engine):
    from starchat_tui.store import SessionStore

    store = SessionStore()
    session = store.create_session("tiny")
    for n in range(150):
        store.add_message(session.id, "user", f"question {n}")
        store.add_message(session.id, "assistant", f"answer {n}\n```python\nprint({n})\n```")
    async with running_app(tiny_model, tiny_engine, session_id=session.id) as pilot:
        app = pilot.app
        transcript = app.chat_screen.transcript
        mounted = len(transcript.query(".message"))
        assert mounted == transcript.window < 300
        assert transcript.hidden_count == 300 - transcript.window
        assert transcript.is_vertical_scroll_end  # opened at the bottom
        numbers = [f.number for f in transcript.query("CodeFence")]
        assert numbers[-1] == 150 and numbers == list(range(150 - len(numbers) + 1, 151))
        await transcript.expand()
        await pilot.pause()
        assert len(transcript.query(".message")) == mounted + transcript.step
        await ask(pilot, "hello")
        assert len(app.chat_screen.chat.messages) == 302


async def test_the_view_follows_the_answer_only_while_the_user_is_at_the_bottom(random_model, rambling_engine):
    from starchat_tui.store import SessionStore

    store = SessionStore()
    long_answers = {"temperature": 0, "min_new_tokens": 600, "max_new_tokens": 600}
    session = store.create_session("random", settings=long_answers)  # settings belong to the session
    for n in range(8):  # taller than the screen, small enough to leave room in the context for a long answer
        store.add_message(session.id, "user", f"q{n}")
        store.add_message(session.id, "assistant", "\n\n".join("p" for _ in range(4)))
    async with running_app(random_model, rambling_engine, session_id=session.id) as pilot:
        app = pilot.app
        screen = app.chat_screen
        transcript = screen.transcript
        screen.prompt.text = "ramble"
        # Not pilot.press: it waits for the screen to go idle, which a streaming answer may not do until it ends.
        app.simulate_key("enter")
        await wait_until(pilot, lambda: screen.generating and transcript.max_scroll_y > 0, what="streaming")
        await pilot.pause(0.3)
        assert transcript.scroll_y == transcript.max_scroll_y  # following
        transcript.scroll_to(y=5, animate=False)  # the user scrolls up to read
        await pilot.pause(0.3)
        assert transcript.scroll_y == 5 and transcript.max_scroll_y > 5
        await wait_until(pilot, lambda: not screen.generating, timeout=60, what="the end of the answer")
        assert transcript.scroll_y == 5  # never yanked back down


# -- running code ------------------------------------------------------------------------------------


def session_with_code(code: str) -> str:
    from starchat_tui.store import SessionStore

    store = SessionStore()
    session = store.create_session("tiny", settings={"temperature": 0})
    store.add_message(session.id, "user", "show me")
    store.add_message(session.id, "assistant", f"Here:\n```python\n{code}\n```")
    return session.id


async def test_running_a_block_asks_first_shows_the_output_and_one_key_sends_it_back(tiny_model, tiny_engine):
    from starchat_tui.sandbox import probe_backend
    from starchat_tui.ui.widgets.tool_result import ToolResult

    async with running_app(tiny_model, tiny_engine, session_id=session_with_code("print('half', 1 / 2)\nprint(1 / 0)")) as pilot:
        app = pilot.app
        screen = app.chat_screen
        screen.prompt.text = "/run 1"
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunCodeScreen", what="the run question")
        # The code is shown before anything runs.
        await wait_until(pilot, lambda: "print(1 / 0)" in screen_text(app), what="the code in the run question")
        await pilot.press("escape")  # skip: nothing runs
        await wait_until(pilot, lambda: app.screen is screen, what="the question to close")
        assert not screen.transcript.query(ToolResult)

        screen.prompt.text = "/run 1"
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "RunCodeScreen", what="the run question")
        await pilot.press("r")
        if not probe_backend().safe:  # without a sandbox every run is confirmed a second time
            await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", what="the second question")
            await pilot.press("y")
        await wait_until(pilot, lambda: bool(screen.transcript.query(ToolResult)), timeout=60, what="the output")
        result = screen.transcript.query_one(ToolResult).result
        assert "half 0.5" in result.stdout and "ZeroDivisionError" in result.stderr and result.exit_code != 0
        await wait_until(pilot, lambda: isinstance(app.focused, ToolResult), what="the output to take focus")
        await pilot.press("e")  # ask the model about it
        await wait_until(pilot, lambda: len(screen.chat.messages) == 4 and not screen.generating, what="the answer")
        question = screen.chat.messages[2]["content"]
        assert "ZeroDivisionError" in question and "Explain this error" in question
        assert screen.chat.store.messages(screen.chat.session_id)[2]["content"] == question


async def test_without_a_sandbox_the_run_is_flagged_and_confirmed_every_time(tiny_model, tiny_engine, monkeypatch):
    from starchat_tui.sandbox import probe_backend
    from starchat_tui.ui.widgets.tool_result import ToolResult

    monkeypatch.setenv("STARCHAT_TUI_SANDBOX_BACKEND", "none")
    probe_backend.cache_clear()
    async with running_app(tiny_model, tiny_engine, session_id=session_with_code("print('ran')")) as pilot:
        app = pilot.app
        screen = app.chat_screen
        for answer in ("n", "y"):
            screen.prompt.text = "/run 1"
            await pilot.press("enter")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "RunCodeScreen", what="the run question")
            assert "NO SANDBOX" in screen_text(app)
            await pilot.press("a")  # "always" still asks again without a sandbox
            await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", what="the second question")
            await pilot.press(answer)
            await wait_until(pilot, lambda: app.screen is screen, what="the dialogs to close")
            if answer == "n":
                await pilot.pause(0.2)
                assert not screen.transcript.query(ToolResult)  # refused: nothing ran
        await wait_until(pilot, lambda: bool(screen.transcript.query(ToolResult)), timeout=60, what="the output")
        result = screen.transcript.query_one(ToolResult).result
        assert result.backend == "none" and result.stdout == "ran\n"
    probe_backend.cache_clear()


# -- the rest of the actions -------------------------------------------------------------------------


async def test_help_lists_keys_as_remapped_and_every_slash_command(tiny_model, tiny_engine):
    from starchat_tui.session.commands import COMMANDS

    config_file().write_text('[keys]\nregenerate = "f5"\n')
    async with running_app(tiny_model, tiny_engine, size=(110, 60)) as pilot:
        app = pilot.app
        await pilot.press("f1")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HelpScreen", what="help")
        text = str(app.screen.query_one("#help-text").render())
        assert "f5" in text and "Regenerate the last answer" in text and "alt+r" not in text
        for command in COMMANDS.values():
            assert command.usage in text
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is app.chat_screen, what="help to close")


async def test_model_switch_loads_in_the_background_and_is_saved_with_the_session(tiny_model, random_model,
                                                                                  tiny_engine):
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        await ask(pilot, "hello")
        screen.prompt.text = f"/model {random_model}"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.engine is not tiny_engine and app.engine is not None
                         and app.loading_model is None, what="the new model")
        assert screen.status_line.model == "random" and app.engine.model_name == random_model
        assert screen.chat.store.get_session(screen.chat.session_id).model == random_model


async def test_copy_without_a_number_copies_the_last_answer(tiny_model, tiny_engine, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        await ask(pilot, "What does len do?")
        app.chat_screen.prompt.text = "/copy"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.clipboard == app.chat_screen.chat.messages[-1]["content"], what="copy")


async def test_attached_input_waits_for_enter_and_goes_into_the_first_message(tiny_model, tiny_engine):
    from starchat_tui.chat.attachments import decode_input

    attachment = decode_input(b"def add(a, b):\n    return a + b\n", "x.py")
    async with running_app(tiny_model, tiny_engine, attachments=[attachment]) as pilot:
        app = pilot.app
        screen = app.chat_screen
        tokens = tiny_engine.renderer.count_tokens(attachment.text)
        await wait_until(pilot, lambda: f"attached: x.py (2 lines, {tokens} tokens)" in screen_text(app), what="the bar")
        assert screen.chat.messages == []  # nothing is sent until the user says what to ask
        await ask(pilot, "What does this do?")
        first = screen.chat.messages[0]["content"]
        assert first == "What does this do?\n\nx.py:\n```python\ndef add(a, b):\n    return a + b\n```"
        assert screen.attachments == []


async def test_a_prompt_given_on_the_command_line_is_sent_at_once(tiny_model, tiny_engine):
    app = make_app(tiny_model, tiny_engine, instruction="Reverse a string in Python.")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.chat_screen
        await wait_until(pilot, lambda: len(screen.chat.messages) == 2 and not screen.generating, what="the answer")
        assert screen.chat.messages[0]["content"] == "Reverse a string in Python."


async def test_the_transcript_unmounts_old_entries_while_following_and_brings_them_back():
    from textual.app import App
    from textual.widgets import Static

    from starchat_tui.ui.widgets.transcript import Transcript

    class Host(App):
        def compose(self):
            yield Transcript(window=4, step=3)

    app = Host()
    async with app.run_test(size=(60, 10)) as pilot:
        transcript = app.query_one(Transcript)
        for n in range(12):
            await transcript.add(lambda n=n: Static(f"entry {n}\n\n"))
        await pilot.pause()
        mounted = [w for w in transcript.entries() if w is not None]
        assert len(mounted) <= 2 * transcript.window and transcript.hidden_count == 12 - len(mounted)
        assert str(mounted[-1].render()).startswith("entry 11")
        before = transcript.hidden_count
        await transcript.expand()
        assert transcript.hidden_count == before - 3
        shown = [str(w.render()).split()[1] for w in transcript.query(Static) if "entry" in str(w.render())]
        assert shown == sorted(shown, key=int)  # older entries come back above, in order


async def test_square_brackets_from_users_and_models_are_shown_literally(tiny_model, tiny_engine):
    from starchat_tui.store import SessionStore

    store = SessionStore()
    session = store.create_session("tiny")
    store.add_message(session.id, "user", "why does [bold]x[/] print [red")
    store.add_prompt("grep '[a-z]' file")
    async with running_app(tiny_model, tiny_engine, store=store, size=(110, 34)) as pilot:
        app = pilot.app
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "SessionsScreen", what="the sessions")
        await wait_until(pilot, lambda: "why does [bold]x[/] print [red" in screen_text(app), what="the title")
        await pilot.press("escape")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "grep '[a-z]' file" in screen_text(app), what="the history entry")
        await pilot.press("escape")
        app.chat_screen.prompt.text = "/shw [x]"
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("unknown command /shw" in n.message for n in app._notifications),
                         what="the notification")
        assert all(not n.markup for n in app._notifications)


async def test_esc_stops_a_shell_command_and_its_output_so_far_is_attached(tiny_model, tiny_engine, tmp_path,
                                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("x = 1\n")
    async with running_app(tiny_model, tiny_engine) as pilot:
        screen = pilot.app.chat_screen
        screen.prompt.text = "!echo started; sleep 30"
        await pilot.press("enter")
        await wait_until(pilot, lambda: screen.code_runner.running, what="the command to start")
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(screen.chat.attachments), what="the command to stop", timeout=10)
        [output] = screen.chat.attachments
        assert "stopped by you" in output.source and output.text == "started\n"
        screen.prompt.text = "look at @ap"
        await pilot.press("tab")
        assert screen.prompt.text == "look at @app.py"
        await pilot.pause()
        assert "attached: output of `echo started; sleep 30`" in screen_text(pilot.app)


async def test_apply_shows_the_diff_in_colour_and_asks(tiny_model, tiny_engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text("x = 1\n")
    async with running_app(tiny_model, tiny_engine) as pilot:
        app = pilot.app
        screen = app.chat_screen
        screen.chat.conversation.add("assistant", "```python\nx = 2\n```\n")
        screen.prompt.text = "/apply 1 app.py"
        await pilot.press("enter")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen", what="the question")
        shown = app.screen.query_one("#detail Static").render()  # the diff, in the question's own dialog
        assert [(str(shown)[span.start:span.end], str(span.style)) for span in shown.spans if span.style] == [
            ("--- a/app.py\n", "bold"), ("+++ b/app.py\n", "bold"), ("@@ -1 +1 @@\n", "ansi_cyan"),
            ("-x = 1\n", "ansi_red"), ("+x = 2\n", "ansi_green")]
        await pilot.press("y")
        await wait_until(pilot, lambda: (tmp_path / "app.py").read_text() == "x = 2\n", what="the file written")
