"""``replies``: several answers to one conversation generated together, on every kind of engine.

The in-process engine batches them in one ``generate``; the engine process forwards the request to its engine;
a server gets concurrent requests (here the real ``transformers serve``). Each must give what the same number
of streams would, leave the conversation as it is, and stop on Ctrl-C.
"""

from __future__ import annotations

import _thread
import os
import sys
import threading
import time

import pytest
import torch
from servers import RealServer
from stream_counting import StreamCounter

from starchat_tui import Conversation, load_engine
from starchat_tui.engine.endpoints import remote_target
from starchat_tui.engine.process import EngineProcess
from starchat_tui.engine.remote import connect
from starchat_tui.errors import UsageError

GREEDY = {"temperature": 0}
QUESTION = "Write a function that doubles a number."


def asking(question: str = QUESTION) -> Conversation:
    conversation = Conversation()
    conversation.add("user", question)
    return conversation


def streamed(engine, **options) -> str:
    conversation = asking()
    for _ in engine.stream(conversation, **options):
        pass
    return conversation.messages[-1]["content"]


@pytest.fixture(scope="module")
def local(tiny_model):
    return load_engine(tiny_model)


@pytest.fixture(scope="module")
def child(tiny_model, tmp_path_factory):
    engine = EngineProcess([sys.executable, "-m", "starchat_tui.engine.child"],
                           tmp_path_factory.mktemp("logs") / "engine.log",
                           env=dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false"))
    engine.load(tiny_model)
    yield engine
    engine.close()


def test_greedy_replies_are_the_streamed_reply_n_times_and_the_conversation_is_left_alone(local):
    conversation = asking()
    replies = local.replies(conversation, 3, **GREEDY, max_new_tokens=40)
    assert replies == [streamed(local, **GREEDY, max_new_tokens=40)] * 3
    assert conversation.messages == [{"role": "user", "content": QUESTION}]
    assert local.stats.new_tokens > 0


@pytest.mark.parametrize("model", ["tiny_model", "tiny_model_plain"])
def test_one_sampled_reply_is_what_a_stream_samples_with_the_same_seed(model, request):
    """A batch of one draws the same random numbers as a stream, so stopping and decoding must agree exactly,
    with the tokenizer's <|end|> token and with the text stop of a tokenizer that lacks it."""
    engine = load_engine(request.getfixturevalue(model))
    options = {"temperature": 0.9, "max_new_tokens": 60}
    torch.manual_seed(7)
    expected = streamed(engine, **options)
    torch.manual_seed(7)
    assert engine.replies(asking(), 1, **options) == [expected]


def test_sampled_replies_are_n_different_answers(rambler):
    replies = rambler.replies(asking(), 4, temperature=1.0, max_new_tokens=30)
    assert len(replies) == 4
    # An untrained model may end a sample at once (an empty reply), but four samples are never all alike.
    assert len(set(replies)) > 1


def test_no_replies_is_the_users_error(local):
    with pytest.raises(UsageError, match="at least 1"):
        local.replies(asking(), 0)


def interrupt_once_busy(engine) -> threading.Thread:
    """Ctrl-C as the main thread receives it (a KeyboardInterrupt wherever it waits), once ``engine`` is generating."""

    def watch() -> None:
        while not engine._busy.locked():
            time.sleep(0.001)
        _thread.interrupt_main()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_ctrl_c_stops_the_batch_and_the_engine_answers_again(rambler):
    watcher = interrupt_once_busy(rambler)
    with pytest.raises(KeyboardInterrupt):
        rambler.replies(asking(), 8, temperature=1.0, max_new_tokens=100_000)
    watcher.join()
    assert rambler.replies(asking(), 2, **GREEDY, max_new_tokens=5)  # not left busy


def test_the_engine_process_gives_what_the_in_process_engine_gives(child, local):
    options = {**GREEDY, "max_new_tokens": 40}
    assert child.replies(asking(), 2, **options) == local.replies(asking(), 2, **options)
    assert child.stats.new_tokens == local.stats.new_tokens
    with pytest.raises(UsageError):
        child.replies(asking(), 2, temperature=-1)


def test_ctrl_c_stops_the_engine_process_batch_and_it_answers_again(random_model, tmp_path):
    engine = EngineProcess([sys.executable, "-m", "starchat_tui.engine.child"], tmp_path / "engine.log",
                           env=dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false"))
    try:
        engine.load(random_model)
        watcher = interrupt_once_busy(engine)
        with pytest.raises(KeyboardInterrupt):
            engine.replies(asking(), 8, temperature=1.0, max_new_tokens=100_000)
        watcher.join()
        assert len(engine.replies(asking(), 2, **GREEDY, max_new_tokens=5)) == 2
    finally:
        engine.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    started = RealServer(tmp_path_factory.mktemp("serve"))
    yield started
    started.stop()


def test_a_server_gets_concurrent_requests_and_greedy_settings_one(server, tiny_model):
    engine = connect(remote_target(f"{server.url}#{tiny_model}"))
    try:
        streams = StreamCounter(engine)
        conversation = asking()
        replies = engine.replies(conversation, 3, temperature=1.0, max_new_tokens=40)
        assert len(replies) == 3 and all(isinstance(reply, str) for reply in replies)
        assert streams.asked == 3 and streams.peak > 1, "the samples should be asked for at once"
        assert conversation.messages == [{"role": "user", "content": QUESTION}]
        streams.asked = 0
        greedy = engine.replies(asking(), 3, **GREEDY, max_new_tokens=40)
        assert streams.asked == 1 and len(greedy) == 3 and len(set(greedy)) == 1
    finally:
        engine.close()
