"""The engine in its own process, on tiny real models: it must behave as the in-process engine does, stop
when asked, report its own failures, and never outlive the app that started it. Stopping is tested on
both engines here, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from starchat_tui import Conversation, load_engine
from starchat_tui.chat.attachments import Attachment
from starchat_tui.engine.process import EngineProcess, EngineProcessError, start_engine_process
from starchat_tui.engine.render import fit_attachments
from starchat_tui.engine.wire import error_from_wire, error_to_wire
from starchat_tui.errors import ModelLoadError, UsageError

GREEDY = {"temperature": 0}
WORKER = [sys.executable, "-m", "starchat_tui.engine.child"]


def offline_env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


def spawn(model: str, log: Path) -> EngineProcess:
    engine = EngineProcess(WORKER, log, env=offline_env())
    engine.load(model)
    return engine


@pytest.fixture(scope="module")
def remote(tiny_model, tmp_path_factory):
    engine = spawn(tiny_model, tmp_path_factory.mktemp("logs") / "engine.log")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def local(tiny_model):
    return load_engine(tiny_model)


@pytest.fixture(scope="module")
def rambler(random_model, tmp_path_factory):
    engine = spawn(random_model, tmp_path_factory.mktemp("logs") / "rambler.log")
    yield engine
    engine.close()


def asking(question: str) -> Conversation:
    conversation = Conversation()
    conversation.add("user", question)
    return conversation


def test_answers_exactly_as_the_in_process_engine_does(remote, local):
    assert (remote.model_name, remote.device, remote.dtype, remote.context_limit) == (
        local.model_name, local.device, local.dtype, local.context_limit)
    here, there = asking("How do I sort a list in Python?"), asking("How do I sort a list in Python?")
    local_chunks = list(local.stream(here, max_new_tokens=40, **GREEDY))
    remote_chunks = list(remote.stream(there, max_new_tokens=40, **GREEDY))
    assert "".join(remote_chunks) == "".join(local_chunks)
    assert len(remote_chunks) > 1, "the reply should stream, not arrive at once"
    assert there.messages == here.messages
    assert remote.stats.new_tokens == local.stats.new_tokens > 0
    assert remote.stats.tokens_per_s > 0


def test_renders_and_counts_prompts_with_the_models_tokenizer(remote, local):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "def f(x): return x * 2"}]
    assert remote.renderer.render_prompt(messages) == local.renderer.render_prompt(messages)
    assert remote.renderer.count_messages(messages) == local.renderer.count_messages(messages)
    assert remote.renderer.template_source == local.renderer.template_source
    assert remote.renderer.uses_own_template == local.renderer.uses_own_template


def test_cuts_attachments_to_the_context_as_the_in_process_engine_does(remote, local):
    big = "\n".join(f"value_{n} = compute({n}) * {n}" for n in range(3000))
    results = []
    for engine in (local, remote):
        attachment = Attachment("big.py", big)
        content, cuts = fit_attachments(engine.renderer, Conversation(), "review this", [attachment], 64)
        results.append((content, cuts, attachment.cut_tokens))
    assert results[0] == results[1]
    assert results[1][2] > 0, "the file is larger than the context and must be cut"


def test_the_next_answer_can_be_asked_for_the_moment_the_last_one_ends(remote):
    conversation = asking("one")
    for turn in range(15):
        list(remote.stream(conversation, max_new_tokens=2, **GREEDY))
        conversation.add("user", f"and {turn}")
    assert [m["role"] for m in conversation.messages].count("assistant") == 15


def test_a_bad_setting_is_the_users_error_not_a_crash(remote):
    conversation = asking("hello")
    with pytest.raises(UsageError, match="did you mean .temperature"):
        list(remote.stream(conversation, temprature=0.5))
    assert conversation.messages[-1]["role"] == "user"
    list(remote.stream(conversation, max_new_tokens=4, **GREEDY))  # still answering afterwards
    assert conversation.messages[-1]["role"] == "assistant"


@pytest.fixture(scope="module")
def local_rambler(random_model):
    return load_engine(random_model)


@pytest.fixture(params=["in this process", "in an engine process"])
def either_rambler(request):
    """The rambling model in both engines: what follows must hold for each."""
    return request.getfixturevalue("local_rambler" if request.param == "in this process" else "rambler")


def test_cancel_from_another_thread_stops_within_250ms_and_keeps_the_partial_answer(either_rambler):
    conversation = asking("tell me everything")
    received: list[str] = []
    stopped_at: list[float] = []

    def consume():
        for chunk in either_rambler.stream(conversation, max_new_tokens=900, min_new_tokens=900, **GREEDY):
            received.append(chunk)
        stopped_at.append(time.perf_counter())

    consumer = threading.Thread(target=consume)
    consumer.start()
    deadline = time.monotonic() + 60
    while len(received) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    cancelled_at = time.perf_counter()
    either_rambler.cancel()
    consumer.join(timeout=10)
    assert stopped_at and stopped_at[0] - cancelled_at < 0.25
    reply = conversation.messages[-1]
    assert reply["interrupted"] is True and reply["content"] == "".join(received)
    assert either_rambler.stats.new_tokens < 900


def test_a_consumer_that_stops_reading_leaves_an_interrupted_reply_in_context(either_rambler):
    conversation = asking("go on")
    stream = either_rambler.stream(conversation, max_new_tokens=900, min_new_tokens=900, **GREEDY)
    first = next(stream)
    stream.close()
    reply = conversation.messages[-1]
    assert reply["role"] == "assistant" and reply["interrupted"] is True
    assert reply["content"].startswith(first)
    # The engine is free again, and the interrupted reply stays in context for the next turn.
    conversation.add("user", "and then?")
    list(either_rambler.stream(conversation, max_new_tokens=8, **GREEDY))
    assert conversation.messages[-1]["role"] == "assistant"
    assert either_rambler.stats.cached_tokens > 0


def test_a_model_that_cannot_load_fails_with_the_loaders_message(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ModelLoadError) as in_process:
        load_engine(str(missing))
    with pytest.raises(ModelLoadError) as remote:
        start_engine_process(str(missing))
    assert str(remote.value) == str(in_process.value)
    assert not list((tmp_path / "home" / "cache" / "logs").glob("*.log")), "a clean exit leaves no log behind"


def test_a_killed_engine_process_is_an_error_that_names_its_log(random_model, tmp_path):
    log = tmp_path / "engine.log"
    engine = spawn(random_model, log)
    conversation = asking("ramble")
    stream = engine.stream(conversation, max_new_tokens=900, min_new_tokens=900, **GREEDY)
    next(stream)
    os.kill(engine.pid, signal.SIGKILL)
    with pytest.raises(EngineProcessError, match=rf"killed by signal 9 .*{log.name}"):
        for _ in stream:
            pass
    with pytest.raises(EngineProcessError):
        engine.renderer.count_tokens("still there?")
    started = time.monotonic()
    with pytest.raises(EngineProcessError):
        list(engine.stream(asking("anyone?")))
    assert time.monotonic() - started < 1, "asking a dead engine fails at once"
    engine.close()
    assert log.exists(), "the log of a crashed engine is kept"


def test_the_engine_process_ends_when_its_app_is_killed(tiny_model, tmp_path, process_gone):
    """kill -9 the app mid-answer: its engine process must not live on, holding the model in memory."""
    app = textwrap.dedent(
        f"""
        import sys, time
        from starchat_tui import Conversation
        from starchat_tui.engine.process import EngineProcess
        engine = EngineProcess({WORKER!r}, __import__("pathlib").Path({str(tmp_path / "e.log")!r}))
        engine.load({tiny_model!r})
        conversation = Conversation()
        conversation.add("user", "hi")
        stream = engine.stream(conversation, max_new_tokens=100000, min_new_tokens=100000)
        next(stream)
        print(engine.pid, "torch" in sys.modules, flush=True)
        time.sleep(600)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", app], stdout=subprocess.PIPE, text=True, env=offline_env())
    try:
        pid, imported_torch = process.stdout.readline().split()
    finally:
        process.kill()
        process.wait()
    assert imported_torch == "False", "the app's process must not load torch: the engine process does"
    assert process_gone(int(pid)), "the engine process outlived the app"


def test_errors_cross_the_process_boundary_as_their_own_class():
    for error in (UsageError("bad flag"), ModelLoadError("no model"), ValueError("odd"), TypeError("wrong type")):
        back = error_from_wire(error_to_wire(error))
        assert type(back) is type(error) and str(back) == str(error)
    strange = error_from_wire({"type": "CudaOutOfMemory", "message": "tried to allocate 2 GiB"})
    assert isinstance(strange, RuntimeError) and str(strange) == "CudaOutOfMemory: tried to allocate 2 GiB"


def test_an_unexpected_failure_keeps_its_traceback_in_the_log(remote):
    """A failure inside generate is our bug, not the user's: the app gets one line, the log the traceback."""
    conversation = asking("hello")
    with pytest.raises(Exception, match=r"traceback in .*engine\.log") as failure:
        list(remote.stream(conversation, max_new_tokens=4, num_beams=0))
    assert not isinstance(failure.value, UsageError)
    assert "Traceback" in remote.log_path.read_text()
