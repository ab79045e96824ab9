"""The chat session every front-end shares: saving as it happens, the one stream-and-save loop, and the
changes a user makes to a conversation. A real engine on a tiny model and a real SQLite store."""

from __future__ import annotations

import pytest

from starchat_tui.config import Settings
from starchat_tui.errors import UsageError
from starchat_tui.session import chat_session as chat_session_module
from starchat_tui.session.chat_session import ChatSession, parse_settings_text
from starchat_tui.store import SessionStore


@pytest.fixture
def store(tmp_path):
    with SessionStore(tmp_path / "sessions.db") as opened:
        yield opened


@pytest.fixture(scope="module")
def engine(tiny_model):
    from starchat_tui.engine import load_engine

    return load_engine(tiny_model, device="cpu")


class FailsAfter:
    """A real engine whose generation breaks after ``chunks`` pieces: a failure a healthy model cannot be made
    to produce on demand."""

    def __init__(self, engine, chunks: int) -> None:
        self._engine = engine
        self._chunks = chunks

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def stream(self, conversation, **options):
        stream = self._engine.stream(conversation, **options)
        try:
            for index, chunk in enumerate(stream):
                if index == self._chunks:
                    raise RuntimeError("the device fell over")
                yield chunk
        finally:
            stream.close()
            # The real engine appended what it had as interrupted; a failed engine appends nothing.
            if conversation.messages and conversation.messages[-1]["role"] == "assistant":
                conversation.messages.pop()


def test_a_chat_is_saved_only_once_it_has_a_message(store):
    chat = ChatSession(store, model="demo", system="be brief", options={"temperature": 0})
    assert store.list_sessions() == []
    chat.add_user("hello")
    saved = store.get_session(chat.session_id)
    assert saved.system == "be brief" and saved.settings == {"temperature": 0}
    assert store.messages(chat.session_id) == [{"role": "user", "content": "hello"}]


def test_an_answer_is_saved_while_it_streams_and_whole_when_it_ends(store, engine, monkeypatch):
    monkeypatch.setattr(chat_session_module, "SAVE_INTERVAL", 0.0)
    chat = ChatSession(store, model="tiny", options={"temperature": 0, "max_new_tokens": 40})
    chat.add_user("Write a function that adds two numbers.")
    stream = chat.reply(engine)
    first = next(stream)
    assert store.messages(chat.session_id)[-1] == {"role": "assistant", "content": first, "interrupted": True}, \
        "an unfinished answer is on disk (marked interrupted until it ends) as soon as it is shown"
    second = next(stream)
    assert store.messages(chat.session_id)[-1]["content"] == first + second  # saved as it grows
    rest = "".join(stream)
    answer = chat.conversation.messages[-1]
    assert answer["role"] == "assistant" and answer["content"] == first + second + rest
    assert store.messages(chat.session_id)[-1] == {"role": "assistant", "content": answer["content"]}
    assert chat.last_reply == answer


def test_a_reader_that_stops_leaves_the_answer_saved_and_marked_interrupted(store, rambler):
    chat = ChatSession(store, model="random", options={"temperature": 0, "max_new_tokens": 200})
    chat.add_user("ramble")
    stream = chat.reply(rambler)
    kept = "".join(next(stream) for _ in range(3))
    stream.close()  # what a script's Ctrl+C does to the loop
    saved = store.messages(chat.session_id)[-1]
    assert saved["interrupted"] is True and saved["content"].startswith(kept) and saved["content"]
    assert chat.last_reply == chat.conversation.messages[-1] == saved


def test_a_cancelled_engine_ends_the_answer_as_interrupted(store, rambler):
    chat = ChatSession(store, model="random", options={"temperature": 0, "max_new_tokens": 500})
    chat.add_user("ramble")
    pieces = []
    for piece in chat.reply(rambler):
        pieces.append(piece)
        if len(pieces) == 2:
            rambler.cancel()
    assert chat.last_reply["interrupted"] is True
    assert store.messages(chat.session_id)[-1] == chat.last_reply
    assert rambler.stats.new_tokens < 500


def test_a_failed_answer_keeps_what_streamed_and_drops_an_empty_one(store, rambler):
    chat = ChatSession(store, model="random", options={"temperature": 0, "max_new_tokens": 100})
    chat.add_user("one")
    streamed = []
    with pytest.raises(RuntimeError, match="fell over"):
        for piece in chat.reply(FailsAfter(rambler, 3)):
            streamed.append(piece)
    assert chat.last_reply == {"role": "assistant", "content": "".join(streamed), "interrupted": True}
    assert store.messages(chat.session_id)[-1] == chat.last_reply
    chat.add_user("two")
    with pytest.raises(RuntimeError, match="fell over"):
        list(chat.reply(FailsAfter(rambler, 0)))
    assert chat.last_reply is None
    assert [m["content"] for m in store.messages(chat.session_id)] == ["one", "".join(streamed), "two"]
    assert [m["content"] for m in chat.messages] == ["one", "".join(streamed), "two"]


def test_print_mode_chats_keep_the_same_rules_without_a_store(engine):
    chat = ChatSession(None, model="tiny", options={"temperature": 0, "max_new_tokens": 20})
    chat.add_user("hello")
    text = "".join(chat.reply(engine))
    assert chat.session_id is None
    assert chat.last_reply == {"role": "assistant", "content": text}


def test_attachments_are_fitted_to_the_context_and_kept_when_they_cannot_be(engine):
    from starchat_tui.chat.attachments import decode_input

    chat = ChatSession(None, model="tiny", options={"max_new_tokens": 64})
    chat.attachments = [decode_input(b"print('x')\n" * 4000, "big.py")]
    content, cuts = chat.compose(engine.renderer, "review this")
    assert content.startswith("review this") and "big.py" in content
    assert len(cuts) == 1 and "big.py: input cut to fit" in cuts[0]
    assert chat.attachments == []
    chat.attachments = [decode_input(b"x = 1\n", "small.py")]
    with pytest.raises(UsageError, match="only .* fit"):
        chat.compose(engine.renderer, "word " * 5000)
    assert [a.source for a in chat.attachments] == ["small.py"], "an attachment that could not go is not lost"


def test_regenerate_edit_fork_and_clear_keep_store_and_memory_in_step(store):
    chat = ChatSession(store, model="demo", system="sys")
    for question, answer in (("q1", "a1"), ("q2", "a2"), ("q3", "a3")):
        chat.add_user(question)
        chat.conversation.add("assistant", answer)
        store.add_message(chat.session_id, "assistant", answer)
    assert chat.drop_last_reply() == 5
    assert [m["content"] for m in store.messages(chat.session_id)] == ["q1", "a1", "q2", "a2", "q3"]
    assert chat.drop_last_reply() == 5  # nothing after the question: the answer goes at the end
    assert chat.begin_edit() == "q3"
    chat.add_user("q3, better")
    assert [m["content"] for m in chat.messages] == ["q1", "a1", "q2", "a2", "q3, better"]
    assert [m["content"] for m in store.messages(chat.session_id)] == ["q1", "a1", "q2", "a2", "q3, better"]
    assert chat.editing is None and chat.conversation.system == "sys"
    forked = chat.fork(1)
    assert forked.session_id != chat.session_id
    assert [m["content"] for m in forked.messages] == ["q1", "a1"] and forked.system == "sys"
    with pytest.raises(UsageError, match="no turn 7"):
        chat.fork(7)
    fresh = chat.fresh()
    assert fresh.messages == [] and fresh.system == "sys" and fresh.session_id is None


def test_generation_settings_are_validated_before_they_are_kept(store):
    chat = ChatSession(store, model="demo")
    chat.add_user("hi")
    chat.set_option("temperature", 0.7)
    assert store.get_session(chat.session_id).settings == {"temperature": 0.7}
    with pytest.raises(UsageError, match="temperatur"):
        chat.set_option("temperatur", 1)
    with pytest.raises(UsageError, match="max_new_tokens"):
        chat.set_option("max_new_tokens", -3)
    chat.set_option("temperature", None)
    assert store.get_session(chat.session_id).settings == {}
    assert parse_settings_text("# mine\ntemperature = 0.5\n\ntop_k=3") == {"temperature": 0.5, "top_k": 3}
    with pytest.raises(UsageError, match="line 1: expected KEY = VALUE"):
        parse_settings_text("temperature 0.5")


def test_a_continued_session_keeps_its_settings_unless_the_command_line_overrides_them(store):
    first = ChatSession(store, model="old-model", system="old system", options={"temperature": 0.1})
    first.add_user("hi")
    settings = Settings(model="new-model", system="new system", generation={"top_k": 5})
    kept = ChatSession.choose(store, settings, session_id=first.session_id[:4])
    assert (kept.model, kept.system, kept.options) == ("old-model", "old system", {"temperature": 0.1})
    changed = ChatSession.choose(store, settings, continue_last=True, overrides=("model", "system", "generation"))
    assert changed.session_id == first.session_id
    assert (changed.model, changed.system, changed.options) == ("new-model", "new system",
                                                                 {"temperature": 0.1, "top_k": 5})
    saved = store.get_session(first.session_id)
    assert (saved.model, saved.system, saved.settings) == ("new-model", "new system", {"temperature": 0.1, "top_k": 5})
    fresh = ChatSession.choose(store, settings)
    assert fresh.session_id is None and fresh.model == "new-model"


def test_continuing_with_nothing_saved_says_so(store):
    with pytest.raises(UsageError, match="no saved session to continue"):
        ChatSession.choose(store, Settings(), continue_last=True)


def test_python_definitions_replace_their_namesakes_and_new_ones_are_appended():
    from starchat_tui.session.workspace import merge_definitions

    old = "import os\n\n\n@cache\ndef a():\n    return 1\n\n\nclass B:\n    x = 1\n\n\nprint(a())\n"
    new = "def a():\n    return 2\n\n\nclass C:\n    pass\n"
    assert merge_definitions(old, new) == (
        "import os\n\n\ndef a():\n    return 2\n\n\nclass B:\n    x = 1\n\n\nprint(a())\n\n\nclass C:\n    pass\n"
    )
    assert merge_definitions(old, "import sys\n\ndef a():\n    pass\n") is None, "not only definitions: a whole file"
    assert merge_definitions("def broken(:\n", new) is None


def test_a_block_names_its_file_in_a_first_line_comment_or_its_fence():
    from starchat_tui.chat.blocks import number_blocks
    from starchat_tui.session.workspace import path_hint

    answer = ("```python src/app.py\nx = 1\n```\n```js\n// file: web/a.js\nlet y\n```\n"
              "```python\n# filename: b.py\nz = 2\n```\n```python\nplain = 3\n```\n")
    blocks = number_blocks([{"role": "assistant", "content": answer}])
    assert [path_hint(b) for b in blocks] == [("src/app.py", "x = 1"), ("web/a.js", "let y"), ("b.py", "z = 2"),
                                              ("", "plain = 3")]


def test_at_completes_paths_git_knows_and_leaves_ignored_ones_out(tmp_path, monkeypatch):
    import subprocess

    from starchat_tui.session.commands import complete

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("build/\n")
    (tmp_path / "app.py").write_text("")
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "x.py").write_text("")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "app.py").write_text("")
    monkeypatch.chdir(tmp_path)
    assert [c.value for c in complete("look at @ap")] == ["look at @app.py", "look at @apps/x.py"]
    assert [c.value for c in complete("@b")] == []
    assert [c.value for c in complete("@x.p")] == ["@apps/x.py"]  # a file name, wherever it is
    assert [c.value for c in complete("@apx")] == ["@apps/x.py"]  # its letters in order
    assert complete("mail me@ap") == []
    assert [c.value for c in complete("/add app.py ap")] == ["/add app.py app.py", "/add app.py apps/x.py"]
    assert "/add build/app.py" not in [c.value for c in complete("/add ")]


def test_a_replaced_file_keeps_its_mode_and_a_new_one_gets_the_umask(tmp_path):
    import os
    import stat

    from starchat_tui.files import write_file

    script = tmp_path / "run.sh"
    script.write_text("echo old\n")
    script.chmod(0o755)
    write_file(script, "echo new\n", force=True)
    assert script.read_text() == "echo new\n" and stat.S_IMODE(script.stat().st_mode) == 0o755
    fresh = tmp_path / "new.txt"
    write_file(fresh, "x\n", force=False)
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_context_use_counts_pending_attachments_and_says_which_turns_are_left_out(engine):
    from starchat_tui.chat.attachments import decode_input

    renderer = engine.renderer
    chat = ChatSession(None, model="tiny", options={"temperature": 0, "max_new_tokens": 16})
    chat.add_user("hello")
    chat.conversation.add("assistant", "Hi there.")
    talked = chat.context_use(renderer)
    assert talked.tokens == renderer.count_messages(chat.conversation.messages)
    assert (talked.limit, talked.left_out, talked.fits) == (1024, 0, True)
    assert talked.short() == f"ctx {talked.tokens}/1k"
    chat.attachments = [decode_input(b"x = 1\n" * 50, "a.py")]
    attached = chat.context_use(renderer, "look at this")
    content = "look at this\n\n" + chat.attachments[0].as_markdown()
    assert attached.tokens == renderer.count_messages([*chat.conversation.messages, {"role": "user", "content": content}])
    chat.attachments = []
    for number in range(30):
        chat.add_user(f"question {number}: " + "why " * 20)
        chat.conversation.add("assistant", "because " * 20)
    full = chat.context_use(renderer)
    assert not full.fits and full.tokens > full.budget
    assert full.left_out == renderer.fit(chat.conversation.messages, 16).dropped_turns > 0
    assert full.short().endswith(f" · {full.left_out} old turn(s) left out")
    chat.add_user("and now?")
    "".join(chat.reply(engine))
    assert any("oldest turn(s)" in warning for warning in engine.warnings), "sending says so too"


def test_compact_shrinks_the_prompt_and_the_store_keeps_every_message(store, engine):
    from starchat_tui.chat.conversation import SUMMARY_INTRO

    chat = ChatSession(store, model="tiny", system="be brief", options={"temperature": 0, "max_new_tokens": 40})
    for number in range(5):
        chat.add_user(f"question {number}: how do I sort a list? " + "explain it step by step " * 8)
        "".join(chat.reply(engine))
    with pytest.raises(UsageError, match="nothing to compact"):
        ChatSession(None, model="tiny").compact(engine)
    everything = [dict(m) for m in chat.messages]
    renderer = engine.renderer
    before = renderer.count_messages(chat.conversation.for_model())
    summary, cuts = chat.compact(engine)
    view = chat.conversation.for_model()
    after = renderer.count_messages(view)
    assert after < before / 2, (before, after)
    assert summary["summary"] is True and summary["covers"] == 8 and summary["content"]
    assert view[0]["role"] == "system" and view[0]["content"].startswith(f"be brief\n\n{SUMMARY_INTRO}")
    assert summary["content"] in view[0]["content"]
    assert view[1:] == everything[8:], "the last turn stays word for word"
    saved = store.messages(chat.session_id)
    assert saved[:10] == everything and saved[10] == summary and len(saved) == 11, "nothing is removed"
    assert ChatSession.open(store, chat.session_id).conversation.for_model() == view, "a reopened chat sees the same"
    with pytest.raises(UsageError, match="nothing to compact"):
        chat.compact(engine)
    with pytest.raises(UsageError, match="nothing to regenerate since /compact"):
        chat.drop_last_reply()
    assert chat.answers()[-1] == everything[-1], "the summary is not an answer"
    chat.add_user("and now?")
    "".join(chat.reply(engine))
    assert engine.stats.prompt_tokens < before, "the model was sent the compacted prompt"
