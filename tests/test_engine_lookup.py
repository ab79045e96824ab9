"""Prompt-lookup decoding: when it is used, and that it never changes a greedy answer, cache reuse included."""

from __future__ import annotations

import pytest
import torch

from starchat_tui import Conversation, load_engine
from starchat_tui.chat.attachments import Attachment
from starchat_tui.engine.lookup import DRAFT_TOKENS, OPTION, lookup_tokens
from starchat_tui.engine.remote import request_fields
from starchat_tui.engine.streaming import ChunkStreamer
from starchat_tui.errors import UsageError

GREEDY = {"temperature": 0}
CODE = "def add(a, b):\n    return a - b\n\nprint(add(2, 3))"
DOUBLE = "def double(x):\n    return x + 2\n\nassert double(3) == 6"
LOOP = "for i in range(3):\n    print(i)"


def fenced(text: str) -> str:
    return f"```python\n{text}\n```"


@pytest.fixture(scope="module")
def engine(tiny_model):
    return load_engine(tiny_model)


def test_lookup_is_on_when_the_question_holds_code_of_two_lines_or_more():
    def drafted(*messages: dict[str, str], **options) -> int:
        return lookup_tokens(list(messages), options)

    user = lambda text: {"role": "user", "content": text}  # noqa: E731
    assistant = lambda text: {"role": "assistant", "content": text}  # noqa: E731
    assert drafted(user(f"Fix this:\n\n{fenced(CODE)}")) == DRAFT_TOKENS
    attached = Attachment("app.py", CODE).as_markdown()
    assert drafted(user(f"Review it\n\n{attached}")) == DRAFT_TOKENS
    assert drafted(user("How do I sort a list?")) == 0
    assert drafted(user(f"What does {fenced('x = 1')} do?")) == 0  # one line: nothing worth copying
    # Only the question counts: code earlier in the chat is not what this answer copies.
    assert drafted(user(fenced(CODE)), assistant("Fixed."), user("Thanks! Now a joke?")) == 0
    # The user's own setting wins either way.
    assert drafted(user(fenced(CODE)), **{OPTION: 0}) == 0
    assert drafted(user("hello"), **{OPTION: 4}) == 4
    with pytest.raises(UsageError, match=f"{OPTION} must be a whole number >= 0"):
        drafted(user("hello"), **{OPTION: -1})


def test_the_option_is_taken_out_of_the_generation_settings():
    options = {OPTION: 3, "temperature": 0}
    assert lookup_tokens([{"role": "user", "content": "hi"}], options) == 3
    assert options == {"temperature": 0}


def test_a_server_is_never_sent_the_option():
    assert request_fields({OPTION: 10, "temperature": 0}) == {"temperature": 0}


def greedy_turns(engine, questions: list[str], **options) -> tuple[list[str], list[int]]:
    """The replies to ``questions`` asked in one conversation, then the last one regenerated; and how many
    prompt tokens the cache held for each."""
    engine.reset_cache()
    conversation = Conversation()
    replies, cached = [], []
    for question in questions:
        conversation.add("user", question)
        replies.append("".join(engine.stream(conversation, **GREEDY, max_new_tokens=60, **options)))
        cached.append(engine.stats.cached_tokens)
        # The cache holds the prompt and the reply but its last token: no token fed twice, none left out.
        assert engine.stats.new_tokens == len(engine._cache.cached_ids) + 1 - engine.stats.prompt_tokens
    conversation.messages.pop()
    replies.append("".join(engine.stream(conversation, **GREEDY, max_new_tokens=60, **options)))
    cached.append(engine.stats.cached_tokens)
    return replies, cached


def test_greedy_text_with_lookup_is_token_for_token_plain_decoding_over_turns_with_cache_reuse(engine):
    questions = [
        f"This should add two numbers:\n\n{fenced(CODE)}\n\nCan you fix it?",
        "How do I reverse a list in Python?",
        f"Why does this fail?\n\n{fenced(DOUBLE)}",
        f"Explain this:\n\n{fenced(LOOP)}",
    ]
    plain, plain_cached = greedy_turns(engine, questions, **{OPTION: 0})
    looked_up, lookup_cached = greedy_turns(engine, questions)
    assert looked_up == plain
    assert sum(map(len, plain)) > 100, "the answers should have text for lookup to draft"
    assert all(count > 0 for count in plain_cached[1:]) and all(count > 0 for count in lookup_cached[1:])
    # A regenerated answer feeds its question again, so that lookup can draft from it; plain decoding need not.
    assert lookup_cached[-1] < plain_cached[-1]


def test_a_sampled_reply_with_lookup_keeps_the_cache_consistent(engine):
    conversation = Conversation()
    for question in (f"Fix it:\n\n{fenced(CODE)}", f"And this one?\n\n{fenced(CODE)}"):
        conversation.add("user", question)
        torch.manual_seed(0)
        reply = "".join(engine.stream(conversation, temperature=0.7, max_new_tokens=40))
        assert conversation.messages[-1]["content"] == reply
        assert engine.stats.new_tokens == len(engine._cache.cached_ids) + 1 - engine.stats.prompt_tokens


def test_the_first_hand_over_is_counted_apart_from_the_decode_rate(engine):
    """A lookup step hands over all its accepted tokens at once; those of the first come with the prefill."""
    streamer = ChunkStreamer(engine.tokenizer, [0])
    streamer.put(torch.tensor([[5, 6, 7]]))  # the prompt
    streamer.put(torch.tensor([[8, 9, 10, 11]]))
    streamer.put(torch.tensor([[12]]))
    assert streamer.first_tokens == 4
