"""starchat-tui against a real OpenAI-compatible server: ``transformers serve`` on 127.0.0.1, serving the tiny
fixture models. Completions mode gives exactly what the server gives for our rendering, chat mode streams and
stops at once, a server that dies or was never started ends in one line with the answer so far kept, and the
API key is sent but never written anywhere. A scripted server covers only what a real one cannot do on cue."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from servers import FakeServer, RealServer, free_port, one_model, send_events, send_json, text_frame
from stream_counting import StreamCounter
from terminal import cli

from starchat_tui.chat.conversation import Conversation
from starchat_tui.chat.template import render_for_generation
from starchat_tui.engine.endpoints import remote_target
from starchat_tui.engine.remote import RemoteError, connect
from starchat_tui.errors import UsageError
from starchat_tui.session.chat_session import ChatSession
from starchat_tui.store import SessionStore

pytestmark = pytest.mark.slow

GREEDY = {"do_sample": False, "max_new_tokens": 40}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server with no model preloaded: it loads whichever model a request names (tiny, random)."""
    started = RealServer(tmp_path_factory.mktemp("serve"))
    yield started
    started.stop()


@pytest.fixture
def store(tmp_path):
    with SessionStore(tmp_path / "sessions.db") as opened:
        yield opened


def asked(question: str) -> Conversation:
    conversation = Conversation()
    conversation.add("user", question)
    return conversation


def test_completions_mode_sends_the_starchat_prompt_and_streams_what_the_server_generates(server, tiny_model):
    engine = connect(remote_target(f"{server.url}#{tiny_model}"))
    assert engine.api == "completions"  # a StarChat model: auto sends our own rendering
    conversation = asked("Write a function that adds two numbers.")
    request = engine.request(conversation, **GREEDY)
    assert request["url"] == server.url + "/completions"
    assert request["json"]["prompt"] == render_for_generation(conversation.messages)  # the StarChat format, byte for byte
    assert request["json"]["stop"][0] == "<|end|>"

    streamed = "".join(engine.stream(conversation, **GREEDY))
    body = {**request["json"], "stream": False}
    body.pop("stream_options")
    direct = httpx.post(request["url"], json=body, timeout=60).json()["choices"][0]["text"]
    assert streamed and streamed == direct.removesuffix("<|end|>")
    assert conversation.messages[-1] == {"role": "assistant", "content": streamed}
    assert engine.stats.new_tokens > 1 and engine.stats.prompt_tokens > 10 and engine.stats.ttft_s > 0

    from starchat_tui.engine import load_engine

    local = load_engine(tiny_model, device="cpu")  # the same weights in this process: the same greedy answer
    assert "".join(local.stream(asked("Write a function that adds two numbers."), **GREEDY)) == streamed
    engine.close()


def test_chat_mode_streams_and_a_cancel_ends_the_answer_within_250_ms(server, random_model, store):
    engine = connect(remote_target(f"{server.url}#{random_model}", api="chat"))
    assert engine.request(asked("hi"))["json"]["messages"] == [{"role": "user", "content": "hi"}]
    chat = ChatSession(store, model="remote", options={"temperature": 0, "max_new_tokens": 900})
    chat.add_user("tell me a long story")
    chunks = []
    stopped_in = None
    for text in chat.reply(engine):
        chunks.append(text)
        if len(chunks) == 3:
            cancelled_at = time.perf_counter()
            engine.cancel()
    stopped_in = time.perf_counter() - cancelled_at
    assert stopped_in < 0.25, stopped_in
    assert chat.last_reply is not None and chat.last_reply["interrupted"] is True
    assert chat.last_reply["content"] == "".join(chunks)
    saved = store.messages(chat.session_id)[-1]
    assert saved["content"] == "".join(chunks) and saved["interrupted"] is True
    # The server is free again: the next answer streams whole.
    chat.add_user("again")
    assert "".join(chat.reply(engine)) and not chat.last_reply.get("interrupted")
    engine.close()


def test_a_consumer_that_stops_reading_leaves_the_answer_interrupted(server, random_model):
    engine = connect(remote_target(f"{server.url}#{random_model}", api="completions"))
    conversation = asked("go on")
    stream = engine.stream(conversation, do_sample=False, max_new_tokens=900)
    chunks = [next(stream) for _ in range(3)]
    stream.close()  # Ctrl+C in a script: the loop reading it is gone
    assert conversation.messages[-1] == {"role": "assistant", "content": "".join(chunks), "interrupted": True}
    engine.close()


def test_the_server_dying_mid_answer_keeps_and_saves_what_came(tmp_path_factory, random_model, store):
    dying = RealServer(tmp_path_factory.mktemp("dying"), model=random_model)
    try:
        engine = connect(remote_target(dying.url))  # the one model it lists is chosen without naming it
        assert engine.model == random_model
        chat = ChatSession(store, model="remote", options={"temperature": 0, "max_new_tokens": 900})
        chat.add_user("go on and on")
        chunks = []
        with pytest.raises(RemoteError, match="broke off the answer.*answer so far is kept"):
            for text in chat.reply(engine):
                chunks.append(text)
                if len(chunks) == 3:
                    dying.kill()
        assert len(chunks) >= 3
        saved = store.messages(chat.session_id)[-1]
        assert saved["role"] == "assistant" and saved["content"] == "".join(chunks) and saved["interrupted"] is True
    finally:
        dying.kill()


def test_a_model_the_server_does_not_have_is_named_with_those_it_has(tmp_path_factory, tiny_model, cli_env,
                                                                     starchat_cmd):
    listing = RealServer(tmp_path_factory.mktemp("listing"), model=tiny_model)
    try:
        with pytest.raises(RemoteError) as caught:
            connect(remote_target(f"{listing.url}#starchat-beta"))
        assert str(caught.value).startswith(f"{listing.url} has no model 'starchat-beta' (HTTP ")
        assert str(caught.value).endswith(f"it has: {tiny_model} (name one as -m {listing.url}#MODEL)")
        # And print mode through it: the real CLI, stdin an empty pipe as under cron.
        done = subprocess.run([*starchat_cmd, "-m", listing.url, "-o", "temperature=0", "-p", "Add two numbers."],
                              env=cli_env, capture_output=True, text=True, stdin=subprocess.PIPE, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() and "ready (completions API" in done.stderr
    finally:
        listing.stop()


def test_no_server_is_one_line_and_exit_3_within_5_seconds(cli_env, starchat_cmd):
    url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    done = subprocess.run([*starchat_cmd, "-m", url, "-p", "hello"], env=cli_env, capture_output=True, text=True,
                          stdin=subprocess.PIPE, timeout=60)
    elapsed = time.monotonic() - started
    assert done.returncode == 3
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert errors == [f"starchat-tui: error: cannot reach {url} (ConnectError: [Errno 111] Connection refused); "
                      "start the server or check the address in -m"]
    assert "Traceback" not in done.stderr
    assert elapsed < 5, elapsed


def test_dry_run_shows_the_exact_request_and_no_key(server, tiny_model, cli_env, starchat_cmd):
    cli_env["STARCHAT_TUI_API_KEY"] = "sk-dry-run-secret"
    done = subprocess.run([*starchat_cmd, "-m", f"{server.url}#{tiny_model}", "-o", "temperature=0", "--dry-run", "-p",
                           "hi"], env=cli_env, capture_output=True, text=True, stdin=subprocess.PIPE, timeout=120)
    assert done.returncode == 0, done.stderr
    request = json.loads(done.stdout)
    assert request["url"] == f"{server.url}/completions"
    assert request["json"]["prompt"] == "<|system|>\n<|end|>\n<|user|>\nhi<|end|>\n<|assistant|>\n"
    assert request["json"]["temperature"] == 0 and "top_k" not in request["json"]
    assert "sk-dry-run-secret" not in done.stdout + done.stderr


def test_named_endpoint_sends_the_key_from_its_variable_and_a_refusal_names_that_variable(cli_env, starchat_cmd,
                                                                                          isolated_home):
    def refuse(handler):
        send_json(handler, 401, {"error": {"message": "invalid api key"}})

    fake = FakeServer({"GET /v1/models": refuse})
    try:
        (isolated_home / "config" / "config.toml").write_text(
            f'[endpoints.lab]\nurl = "{fake.url}"\napi_key_env = "LAB_KEY"\n')
        run = [*starchat_cmd, "-m", "lab", "-p", "hi"]
        done = subprocess.run(run, env=cli_env, capture_output=True, text=True, stdin=subprocess.PIPE, timeout=60)
        assert done.returncode == 3
        assert f"error: {fake.url} needs an API key (HTTP 401): put it in $LAB_KEY" in done.stderr
        done = subprocess.run(run, env={**cli_env, "LAB_KEY": "sk-wrong-one"}, capture_output=True, text=True,
                              stdin=subprocess.PIPE, timeout=60)
        assert done.returncode == 3
        assert f"error: {fake.url} refused the API key in $LAB_KEY (HTTP 401)" in done.stderr
        assert "sk-wrong-one" not in done.stderr + done.stdout
        assert fake.seen[-1]["headers"]["Authorization"] == "Bearer sk-wrong-one"
    finally:
        fake.close()


def test_a_key_in_the_config_file_is_refused(isolated_home):
    from starchat_tui.config import load_settings

    (isolated_home / "config" / "config.toml").write_text('[endpoints.lab]\nurl = "http://x:1/v1"\napi_key = "sk-1"\n')
    with pytest.raises(UsageError, match="put the key in an environment variable and name it with api_key_env"):
        remote_target("lab", load_settings().section("endpoints"))


def test_a_malformed_event_keeps_the_answer_so_far(store):
    frames = [text_frame("def add(a, b):"), text_frame("\n    return a + b"), "{not json"]
    fake = FakeServer({"GET /v1/models": one_model("starchat-beta"),
                       "POST /v1/completions": lambda handler: send_events(handler, frames)})
    try:
        engine = connect(remote_target(fake.url))
        assert engine.api == "completions" and engine.model == "starchat-beta"
        chat = ChatSession(store, model="remote")
        chat.add_user("add")
        with pytest.raises(RemoteError, match="malformed event"):
            for _ in chat.reply(engine):
                pass
        saved = store.messages(chat.session_id)[-1]
        assert saved["content"] == "def add(a, b):\n    return a + b" and saved["interrupted"] is True
    finally:
        fake.close()


def test_settings_a_server_cannot_take_are_one_line_errors(server, tiny_model):
    engine = connect(remote_target(f"{server.url}#{tiny_model}"))
    with pytest.raises(UsageError, match="num_beams cannot be sent to an OpenAI-compatible server"):
        engine.request(asked("hi"), num_beams=4)
    engine.close()


def test_the_tui_in_a_terminal_answers_through_the_server_and_the_key_is_written_nowhere(
        server, tiny_model, terminal_factory, isolated_home, cli_env):
    secret = "sk-never-written-" + "7f3a9c"
    cli_env["GPU_KEY"] = secret
    (isolated_home / "config" / "config.toml").write_text(
        f'[endpoints.gpu]\nurl = "{server.url}"\nmodel = "{tiny_model}"\napi_key_env = "GPU_KEY"\n')
    term = terminal_factory(f"env GPU_KEY={secret} " + cli("-m", "gpu", "-o", "temperature=0"))
    term.wait_for("completions API")  # connected: the status line names the API in use
    term.type("Write a function that adds two numbers.")
    term.keys("Enter")
    screen = term.wait_for("tok/s · first token")
    assert "```" in screen or "def " in screen
    term.keys("C-q")
    term.wait_for("EXIT=0")

    with SessionStore(isolated_home / "data" / "sessions.db") as saved:
        (session,) = saved.list_sessions()
        assert session.model == "gpu"
        assert [m["role"] for m in saved.messages(session.id)] == ["user", "assistant"]
    for path in isolated_home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_the_context_comes_from_the_model_list_and_a_long_history_is_fitted_never_overflowed():
    # vLLM reports max_model_len; with no tokenize route and no local tokenizer, counting falls back to bytes.
    listing = {"object": "list", "data": [{"id": "org/some-chat-model", "max_model_len": 400}]}
    fake = FakeServer({"GET /v1/models": lambda handler: send_json(handler, 200, listing)})
    try:
        engine = connect(remote_target(fake.url))
        assert engine.context_limit == 400 and engine.api == "chat"
        assert any("counting context by bytes" in note for note in engine.notes)
        conversation = Conversation()
        for turn in range(12):
            conversation.add("user", f"question {turn}: " + "x" * 40)
            conversation.add("assistant", f"answer {turn}: " + "y" * 40)
        conversation.add("user", "the last question")
        request = engine.request(conversation, max_new_tokens=50)
        sent = request["json"]["messages"]
        assert sent[-1] == {"role": "user", "content": "the last question"} and len(sent) < len(conversation.messages)
        assert engine.warnings and "dropped the" in engine.warnings[0] and "400-token context" in engine.warnings[0]
        assert len(engine.renderer.render_prompt(sent).encode()) + 50 <= 400  # bytes bound the tokens
    finally:
        fake.close()


def test_line_mode_through_the_server_and_ctrl_c_keeps_the_answer(server, random_model, cli_env, tmp_path,
                                                                    isolated_home):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(sys.executable, ["-m", "starchat_tui", "--plain", "-m", f"{server.url}#{random_model}",
                                           "--api", "chat", "-o", "temperature=0", "-o", "max_new_tokens=900"],
                          env={**cli_env, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"}, cwd=str(tmp_path),
                          encoding="utf-8", timeout=90, dimensions=(40, 120))
    child.expect_exact("\x1b[?2004h")  # prompt_toolkit's prompt is up
    child.send("ramble on\r")
    child.expect(r"ready \(chat API[^\r\n]*[\r\n]")
    child.expect(r"(\S\s*){20}")  # streaming
    child.send("\x03")
    child.expect_exact("[interrupted]")
    child.expect_exact("\x1b[?2004h")
    child.send("/quit\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    with SessionStore(isolated_home / "data" / "sessions.db") as saved:
        (session,) = saved.list_sessions()
        messages = saved.messages(session.id)
    assert messages[-1]["interrupted"] is True and len(messages[-1]["content"]) >= 20


def test_eval_keeps_requests_in_flight_on_the_server_and_writes_results_in_task_order(server, tiny_model, cli_env,
                                                                                       starchat_cmd, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    rows = [{"task_id": f"t/{index}", "prompt": f"def add{index}(a, b):\n", "entry_point": f"add{index}",
             "test": "def check(f):\n    assert f(1, 2) == 3\n"} for index in range(6)]
    tasks.write_text("".join(json.dumps(row) + "\n" for row in rows))

    # In this process, counting the streams open at once against the real server.
    from starchat_tui.eval.runner import evaluate
    from starchat_tui.eval.tasks import load_tasks

    engine = connect(remote_target(f"{server.url}#{tiny_model}"))
    streams = StreamCounter(engine)
    report = evaluate(engine, load_tasks(str(tasks)), samples=3, concurrency=4, allow_unsafe=True)
    assert streams.peak > 1, "answers were generated one at a time"
    assert [result.task_id for result in report.results] == [row["task_id"] for row in rows]
    assert all(result.n == 3 for result in report.results)
    engine.close()

    # And the command: --out rows in task order, each with task_id and passed.
    out = tmp_path / "out.jsonl"
    done = subprocess.run([*starchat_cmd, "eval", "--model", f"{server.url}#{tiny_model}", "--tasks", str(tasks),
                           "--samples", "2", "--concurrency", "8", "--out", str(out), "--allow-unsafe"],
                          env=cli_env, capture_output=True, text=True, stdin=subprocess.PIPE, timeout=300)
    assert done.returncode == 0, done.stderr
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["task_id"] for row in written] == [row["task_id"] for row in rows]
    assert all(isinstance(row["passed"], bool) and row["n"] == 2 for row in written)


def test_tokens_are_counted_with_the_servers_tokenize_route_where_it_has_one():
    # vLLM's /tokenize shape; a scripted server, as no server here has the route (transformers serve lacks it).
    def tokenize(handler):
        body = json.loads(fake.seen[-1]["body"])  # the request being answered: one token per word
        send_json(handler, 200, {"tokens": list(range(len(body["prompt"].split()))), "count": 0})

    listing = {"object": "list", "data": [{"id": "org/chat-model", "max_model_len": 4096}]}
    fake = FakeServer({"GET /v1/models": lambda handler: send_json(handler, 200, listing), "POST /tokenize": tokenize})
    try:
        engine = connect(remote_target(fake.url))
        assert engine.counts_exactly and not engine.notes
        assert engine.renderer.count_tokens("one two three") == 3
        assert fake.seen[-1]["route"] == "POST /tokenize"
    finally:
        fake.close()
