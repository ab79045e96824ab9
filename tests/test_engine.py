"""The engine on tiny real models: streaming, stopping, cancelling, cache reuse and errors."""

from __future__ import annotations

import shutil
import time

import pytest

from starchat_tui import Conversation, load_engine
from starchat_tui.chat.template import END_TOKEN, render, render_for_generation
from starchat_tui.errors import ModelLoadError, UsageError

GREEDY = {"temperature": 0}


@pytest.fixture(scope="module")
def engine(tiny_model):
    return load_engine(tiny_model)


def ask(engine, conversation, **options):
    chunks = list(engine.stream(conversation, **{**GREEDY, **options}))
    return chunks, conversation.messages[-1]


def test_streams_chunks_and_appends_the_reply(engine):
    conversation = Conversation()
    conversation.add("user", "How do I sort a list in Python?")
    chunks, reply = ask(engine, conversation, max_new_tokens=60)
    assert len(chunks) > 1, "the reply should arrive in several pieces"
    assert reply["role"] == "assistant"
    assert reply["content"] == "".join(chunks)
    assert "interrupted" not in reply
    assert engine.stats.new_tokens == len(engine._cache.cached_ids) + 1 - engine.stats.prompt_tokens
    assert engine.stats.ttft_s > 0 and engine.stats.tokens_per_s > 0


def test_stops_at_end_token_from_the_tokenizer_not_the_config(engine, tiny_model):
    """The saved generation_config says eos 0, as StarChat's do; the turn must still end at <|end|>."""
    import torch

    assert engine.model.generation_config.eos_token_id == 0
    end_id = engine.tokenizer.convert_tokens_to_ids(END_TOKEN)
    conversation = Conversation()
    conversation.add("user", "hello")
    _, reply = ask(engine, conversation, max_new_tokens=60)
    assert engine.stats.new_tokens < 60

    # The same prompt through bare generate, which only knows eos 0, runs past <|end|>.
    prompt = engine.tokenizer(render_for_generation([{"role": "user", "content": "hello"}]), return_tensors="pt")
    with torch.inference_mode():
        bare = engine.model.generate(**prompt, max_new_tokens=60, do_sample=False)[0, prompt["input_ids"].shape[1]:].tolist()
    assert end_id in bare
    stop = bare.index(end_id)
    assert engine.stats.new_tokens == stop + 1
    assert reply["content"] == engine.tokenizer.decode(bare[:stop])
    assert END_TOKEN not in reply["content"]


def test_plain_tokenizer_falls_back_to_the_starchat_template(tiny_model_plain):
    engine = load_engine(tiny_model_plain)
    assert engine.tokenizer.chat_template is None
    assert not engine.renderer.uses_own_template
    messages = [{"role": "user", "content": "hi"}]
    assert engine.renderer.render_prompt(messages) == render(messages) + "\n"


def test_a_tokenizer_with_its_own_template_uses_it(tiny_model, tmp_path):
    chatml = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    folder = shutil.copytree(tiny_model, tmp_path / "chatml")
    config = (folder / "tokenizer_config.json").read_text()
    import json

    data = json.loads(config)
    data["chat_template"] = chatml
    (folder / "tokenizer_config.json").write_text(json.dumps(data))
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    engine = load_engine(str(folder))
    assert engine.renderer.render_prompt([{"role": "user", "content": "hi"}]) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_temperature_zero_is_greedy_and_repeatable(engine):
    replies = []
    for _ in range(2):
        engine.reset_cache()
        conversation = Conversation()
        conversation.add("user", "What does len do?")
        replies.append(ask(engine, conversation, max_new_tokens=30)[1]["content"])
    assert replies[0] == replies[1]


def test_the_next_turn_prefills_only_its_new_tokens(engine):
    engine.reset_cache()
    conversation = Conversation()
    for question in ("hello", "What does len do?", "Reverse a string in Python."):
        conversation.add("user", question)
        ask(engine, conversation, max_new_tokens=40)
        assert engine.stats.new_tokens < 40, "each reply must end with <|end|> for this count to hold"
    # The last generated token (the stop token) was never fed back, so the tail starts with the <|end|>.
    new_tail = engine.renderer.count_tokens("<|end|>\n<|user|>\nReverse a string in Python.<|end|>\n<|assistant|>\n")
    assert engine.stats.cached_tokens == engine.stats.prompt_tokens - new_tail


def test_warm_cache_gives_the_same_answer_as_a_fresh_engine(rambler, random_model):
    # The untrained model emits odd tokens (special ones, broken UTF-8), so parts of its replies do not
    # re-tokenize to what it generated: the cache must crop there and still give the same answer.
    warm = Conversation(system="You are terse.")
    for question in ("first question", "second question", "third question"):
        warm.add("user", question)
        ask(rambler, warm, max_new_tokens=24)
    assert rambler.stats.cached_tokens > 0, "the third turn should have reused the cache"

    fresh_engine = load_engine(random_model)
    cold = Conversation.from_messages(warm.messages[:-1])
    ask(fresh_engine, cold, max_new_tokens=24)
    assert fresh_engine.stats.cached_tokens == 0
    assert cold.messages[-1]["content"] == warm.messages[-1]["content"]


def test_an_edited_turn_crops_the_cache_and_still_matches_a_fresh_engine(rambler, random_model):
    conversation = Conversation()
    for question in ("alpha", "beta"):
        conversation.add("user", question)
        ask(rambler, conversation, max_new_tokens=16)
    # Edit the first user message and regenerate: the cached tokens after the edit are stale.
    conversation.messages[0]["content"] = "gamma"
    del conversation.messages[-1]
    ask(rambler, conversation, max_new_tokens=16)
    assert 0 < rambler.stats.cached_tokens < 8, "only the shared header may come from the cache"

    fresh = load_engine(random_model)
    cold = Conversation.from_messages(conversation.messages[:-1])
    ask(fresh, cold, max_new_tokens=16)
    assert cold.messages[-1]["content"] == conversation.messages[-1]["content"]


def test_an_error_in_the_worker_reaches_the_caller_without_hanging(engine):
    conversation = Conversation()
    conversation.add("user", "hi")
    started = time.perf_counter()
    # generate() itself refuses a streamer with beam search: the error is raised on the worker thread.
    with pytest.raises(ValueError, match="(?i)stream"):
        list(engine.stream(conversation, num_beams=2, **GREEDY))
    assert time.perf_counter() - started < 10
    assert conversation.messages[-1]["role"] == "user", "a failed reply is not appended"
    ask(engine, conversation, max_new_tokens=5)
    assert conversation.messages[-1]["role"] == "assistant"


def test_bad_generation_settings_are_usage_errors(engine):
    conversation = Conversation()
    conversation.add("user", "hi")
    with pytest.raises(UsageError, match="did you mean 'temperature'"):
        list(engine.stream(conversation, tempreature=0.3))
    with pytest.raises(UsageError, match="max_new_tokens"):
        list(engine.stream(conversation, max_new_tokens=0))


def test_oldest_turns_are_dropped_to_fit_and_the_caller_is_told(engine):
    conversation = Conversation(system="keep me")
    filler = "word " * 120
    for index in range(12):
        conversation.add("user", f"question {index} {filler}")
        conversation.add("assistant", f"answer {index} {filler}")
    conversation.add("user", "the newest question")
    before = [dict(m) for m in conversation.messages]
    ask(engine, conversation, max_new_tokens=16)
    assert engine.stats.dropped_turns > 0
    assert any("dropped" in warning for warning in engine.warnings)
    assert engine.stats.prompt_tokens <= engine.context_limit - 16
    assert conversation.messages[: len(before)] == before, "dropping is for the prompt only"


def test_missing_models_fail_with_one_clear_line(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_engine(str(tmp_path / "nowhere"))
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache"):
        load_engine("no-such-org/no-such-model")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="no config.json"):
        load_engine(str(empty))


def test_quantisation_without_a_gpu_is_a_clear_error(tiny_model):
    with pytest.raises(ModelLoadError, match="needs a CUDA GPU"):
        load_engine(tiny_model, quantize="8bit")


def test_exiting_with_a_stream_still_running_is_clean(random_model, cli_env, tmp_path):
    """A script that stops reading mid-answer and exits must not abort inside torch (SIGABRT)."""
    import subprocess
    import sys

    script = tmp_path / "abandon.py"
    script.write_text(
        "import sys\n"
        "from starchat_tui import Conversation, load_engine\n"
        "engine = load_engine(sys.argv[1])\n"
        "conversation = Conversation()\n"
        "conversation.add('user', 'go on')\n"
        "stream = engine.stream(conversation, temperature=0, max_new_tokens=900)\n"
        "print(next(stream), flush=True)\n"
        "GLOBAL_STREAM = stream  # never closed: the worker thread is still generating at exit\n"
    )
    result = subprocess.run([sys.executable, str(script), random_model], env=cli_env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert b"terminate called" not in result.stderr


def test_the_streamer_hands_over_text_at_most_every_20ms_and_loses_none(engine):
    """Waking the consumer for every token slows decoding; tokens that come faster are handed over together."""
    import torch

    from starchat_tui.engine.streaming import COALESCE_S, ChunkStreamer

    ids = engine.tokenizer("def add(a, b):\n    return a + b  # the sum of a and b\n", add_special_tokens=False)["input_ids"]
    fast = ChunkStreamer(engine.tokenizer, engine._stop_ids)
    fast.put(torch.tensor([ids[:1]]))  # the prompt, which is skipped
    for token in ids:
        fast.put(torch.tensor([token]))
    fast.end()
    handed = list(fast)
    assert len(handed) == 2, "the first text at once, then the rest together"
    assert "".join(handed) == engine.tokenizer.decode(ids)

    slow = ChunkStreamer(engine.tokenizer, engine._stop_ids)
    slow.put(torch.tensor([ids[:1]]))
    for token in ids[:4]:
        slow.put(torch.tensor([token]))
        time.sleep(COALESCE_S * 1.5)
    slow.end()
    assert len(list(slow)) == 4, "tokens slower than the interval go one by one"
