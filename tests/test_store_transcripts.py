"""Transcripts: Markdown that re-imports to the same messages, JSON/JSONL in the datasets messages format."""

from __future__ import annotations

import json
import random

import pytest

from starchat_tui.chat.conversation import Conversation
from starchat_tui.errors import UsageError
from starchat_tui.store import SessionStore, transcripts
from starchat_tui.store.transcripts import Transcript

TRICKY_CONTENTS = [
    "",
    "\n",
    "\n\n",
    "no newline at the end",
    "ends with two newlines\n\n",
    "  leading and trailing spaces  ",
    "```python\ndef f():\n    return 1\n```",
    "an answer cut inside a fence:\n```python\nfor i in range(",
    "~~~\ntilde fence\n~~~\n",
    "<!-- starchat-tui:end -->",
    "text\n<!-- starchat-tui:end -->\nmore",
    "\\<!-- starchat-tui:end -->\n\\\\<!-- starchat-tui:message {\"role\": \"user\"} -->",
    '<!-- starchat-tui:message {"role": "user"} -->\nfake\n<!-- starchat-tui:end -->',
    "---\nfront: matter\n---\n",
    "### User\n\n# heading\n",
    "windows\r\nline\r\nends\r\n",
    "a lone carriage return\r",
    "unicode: λ → 中文 😀 \u200b",
    "html <!-- comment --> and --> arrows",
    "\x1b[31mred\x1b[0m and \x07 bell",
    "tabs\tand\x0bvertical tab",
]


def sample_messages() -> list[dict]:
    messages = [{"role": "system", "content": "You are terse.\n```\nnot closed"}]
    for index, content in enumerate(TRICKY_CONTENTS):
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": content})
    messages.append({"role": "assistant", "content": "cut off", "interrupted": True})
    return messages


def markdown_round_trip(messages: list[dict], **meta) -> Transcript:
    text = transcripts.to_markdown(Transcript(messages=messages, **meta))
    (back,) = transcripts.parse(text, "md", "test.md")
    return back


def test_markdown_round_trip_is_exact_for_tricky_contents():
    messages = sample_messages()
    back = markdown_round_trip(messages, title="Tricky", model="demo", settings={"temperature": 0.2},
                               created_at="2025-01-02T03:04:05+00:00", id="abcd1234")
    assert back.messages == messages
    assert (back.title, back.model, back.settings, back.created_at, back.id) == (
        "Tricky", "demo", {"temperature": 0.2}, "2025-01-02T03:04:05+00:00", "abcd1234")


def test_markdown_round_trip_of_random_contents():
    rng = random.Random(1234)
    alphabet = ["a", " ", "\n", "`", "```", "~~~", "\\", "<!-- starchat-tui:", "end -->", "-->", "\r", "#", "---", "é", "\t"]
    for _ in range(200):
        messages = [
            {"role": rng.choice(["user", "assistant"]), "content": "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))}
            for _ in range(rng.randint(0, 4))
        ]
        assert markdown_round_trip(messages).messages == messages


def test_markdown_is_readable():
    text = transcripts.to_markdown(Transcript(
        messages=[{"role": "user", "content": "How do I sort?"}, {"role": "assistant", "content": "sorted(x)", "interrupted": True}],
        title="Sorting", model="demo",
    ))
    assert text.startswith("---\nstarchat-tui-transcript: 1\n")
    assert "\n# Sorting\n" in text
    assert "\n### User\n" in text and "\n### Assistant (interrupted)\n" in text
    assert "\nHow do I sort?\n" in text


def test_an_unclosed_fence_is_closed_outside_the_message_for_readers():
    text = transcripts.to_markdown(Transcript(messages=[
        {"role": "assistant", "content": "````python\nx = 1"},
        {"role": "user", "content": "next question"},
    ]))
    assert "<!-- starchat-tui:end -->\n````\n" in text
    assert transcripts.open_fence("```py\nx\n```") is None
    assert transcripts.open_fence("~~~\n```\n") == "~~~"
    assert transcripts.open_fence("``` inline ``` code") is None


def test_json_and_jsonl_are_the_datasets_messages_format():
    messages = sample_messages()
    transcript = Transcript(messages=messages, title="ignored in JSON", model="demo")
    assert json.loads(transcripts.to_json(transcript)) == {"messages": messages}
    jsonl = transcripts.to_jsonl([transcript, Transcript(messages=messages[:2])])
    lines = jsonl.splitlines()
    assert lines[0] == Conversation.from_messages(messages).to_json()
    assert json.loads(lines[1]) == {"messages": messages[:2]}
    assert [t.messages for t in transcripts.parse(jsonl, "jsonl", "x.jsonl")] == [messages, messages[:2]]
    assert transcripts.parse(transcripts.to_json(transcript), "json", "x.json")[0].messages == messages


def test_render_refuses_several_sessions_except_as_jsonl():
    two = [Transcript(messages=[]), Transcript(messages=[])]
    with pytest.raises(UsageError, match="--format jsonl"):
        transcripts.render(two, "md")
    assert transcripts.render(two, "jsonl").count("\n") == 2


def test_formats_from_flags_extensions_and_content():
    assert transcripts.format_for("a.JSONL", None) == "jsonl"
    assert transcripts.format_for("a.markdown", None) == "md"
    assert transcripts.format_for("a.json", "md") == "md"
    assert transcripts.format_for(None, None) == "md"
    assert transcripts.sniff_format('{"messages": []}') == "json"
    assert transcripts.sniff_format('{"messages": []}\n{"messages": []}\n') == "jsonl"
    assert transcripts.sniff_format('[{"messages": []}]') == "json"
    assert transcripts.sniff_format("---\n") == "md"


@pytest.mark.parametrize(
    "text, fmt, message",
    [
        ("{not json", "json", r"x: not valid JSON .*--format jsonl"),
        ('{"chat": []}', "json", r'expected an object of the form \{"messages"'),
        ('{"messages": [{"role": "robot", "content": "hi"}]}', "json", "unknown role 'robot'"),
        ('{"messages": [{"role": "user"}]}', "json", "message 0 has no text content"),
        ('{"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "late"}]}', "json", "system message can only be the first"),
        ('{"messages": []}\n\n{oops}\n', "jsonl", "x line 3: not valid JSON"),
        ("", "jsonl", "holds no conversations"),
        ("# just notes\n\nsome text\n", "md", "not a starchat-tui Markdown transcript.*history export"),
        ('<!-- starchat-tui:message {"role": "user"} -->\nnever closed\n', "md", "never ends with"),
        ("---\ntitle: x\nno end\n", "md", "front matter .* never ends"),
        ("---\nstarchat-tui-transcript: 99\n---\n", "md", "newer starchat-tui"),
        ("<!-- starchat-tui:message {broken} -->\nx\n<!-- starchat-tui:end -->\n", "md", "broken JSON"),
    ],
)
def test_bad_transcripts_are_one_line_usage_errors(text, fmt, message):
    with pytest.raises(UsageError, match=message) as caught:
        transcripts.parse(text, fmt, "x")
    assert "\n" not in str(caught.value)


def test_store_export_and_import_round_trip(tmp_path):
    with SessionStore(tmp_path / "s.db") as store:
        session = store.create_session("demo", "You are terse.", {"temperature": 0.0})
        for message in sample_messages()[1:]:
            extra = {k: v for k, v in message.items() if k not in ("role", "content")}
            store.add_message(session.id, message["role"], message["content"], **extra)
        store.rename(session.id, "My tricky chat")
        original = transcripts.session_transcript(store, session.id)
        for fmt in transcripts.FORMATS:
            text = transcripts.render([original], fmt)
            (new_id,) = transcripts.save_transcripts(store, transcripts.parse(text, fmt, f"x.{fmt}"))
            assert store.conversation(new_id).messages == store.conversation(session.id).messages, fmt
            imported = store.get_session(new_id)
            if fmt == "md":
                assert (imported.title, imported.model, imported.settings) == ("My tricky chat", "demo", {"temperature": 0.0})
                assert imported.created_at == store.get_session(session.id).created_at
            else:
                # JSON carries messages only; the title comes from the first non-blank user line again.
                assert (imported.model, imported.title) == ("unknown", "ends with two newlines")


def test_imported_automatic_titles_stay_automatic(tmp_path):
    with SessionStore(tmp_path / "s.db") as store:
        text = transcripts.to_markdown(Transcript(
            messages=[{"role": "user", "content": "Sort a list"}], title="Sort a list", model="demo",
            created_at="not a date",
        ))
        (new_id,) = transcripts.save_transcripts(store, transcripts.parse(text, "md", "x.md"))
        store.truncate(new_id, 0)
        store.add_message(new_id, "user", "Reverse a list")
        assert store.get_session(new_id).title == "Reverse a list"


def test_a_bad_item_imports_nothing(tmp_path):
    with SessionStore(tmp_path / "s.db") as store:
        good = Transcript(messages=[{"role": "user", "content": "ok"}])
        bad = Transcript(messages=[{"role": "user", "content": "ok"}, {"role": "nobody", "content": "x"}])
        with pytest.raises(ValueError, match="unknown message role 'nobody'"):
            transcripts.save_transcripts(store, [good, bad])
        assert store.list_sessions() == []
