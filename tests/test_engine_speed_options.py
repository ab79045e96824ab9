"""The opt-in speed options on tiny real models: int8 weights (optimum-quanto) and --compile (static cache)."""

from __future__ import annotations

import subprocess

import pytest
from test_cli import assert_one_line_error

from starchat_tui import Conversation, load_engine
from starchat_tui.errors import UsageError

GREEDY = {"temperature": 0}
QUESTIONS = ("first question", "second question", "third question")


def converse(engine, questions=QUESTIONS, max_new_tokens=24):
    """Ask each question in turn in one conversation; each reply with the cached token count of its turn."""
    conversation = Conversation(system="You are terse.")
    replies = []
    for question in questions:
        conversation.add("user", question)
        list(engine.stream(conversation, **GREEDY, max_new_tokens=max_new_tokens))
        replies.append((conversation.messages[-1]["content"], engine.stats.cached_tokens))
    return conversation, replies


def test_int8_loads_int8_weights_and_answers_turn_after_turn(tiny_model):
    from optimum.quanto import qint8

    engine = load_engine(tiny_model, quantize="int8")
    block = engine.model.transformer.h[0]
    assert block.attn.c_attn.weight_qtype == qint8 and block.mlp.c_fc.weight_qtype == qint8
    assert engine.dtype == "int8+bfloat16", "int8 runs what it leaves unquantised, and the activations, in bf16"

    _, replies = converse(engine, QUESTIONS[:2])
    assert all(reply for reply, _ in replies)
    assert replies[1][1] > 0, "the second turn should reuse the cache"


def test_int8_with_compile_is_refused_in_one_line(tiny_model):
    with pytest.raises(UsageError, match="--compile does not work with --quantize int8"):
        load_engine(tiny_model, quantize="int8", compile=True)


def test_int8_on_cpu_refuses_a_float32_dtype(tiny_model):
    with pytest.raises(UsageError, match="--quantize int8 with --dtype float32: on CPU int8 runs with bfloat16 only"):
        load_engine(tiny_model, device="cpu", dtype="float32", quantize="int8")


def test_compile_must_be_a_switch(tiny_model):
    with pytest.raises(UsageError, match=r"compile = 'yes' \(the compile config key or STARCHAT_TUI_COMPILE\): use true or false"):
        load_engine(tiny_model, compile="yes")


@pytest.mark.slow
def test_compiled_static_cache_answers_as_the_dynamic_cache_does_and_reuses_it(random_model):
    import torch._dynamo

    # The untrained model rambles, so every turn's reply fills its token budget and the turns differ.
    dynamic = load_engine(random_model)
    compiled = load_engine(random_model, compile=True)
    graphs_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    plain_conversation, plain = converse(dynamic)
    compiled_conversation, fast = converse(compiled)

    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > graphs_before, "the decode step was not compiled"
    assert fast == plain, "compiled decoding must give the dynamic cache's greedy replies and cached counts"
    assert fast[1][1] > 0 and fast[2][1] > fast[1][1], "later turns should reuse the static cache"

    # Regenerating the last turn crops the static cache back to the shared prefix, as it does the dynamic one.
    for engine, conversation in ((dynamic, plain_conversation), (compiled, compiled_conversation)):
        conversation.messages.pop()
        list(engine.stream(conversation, **GREEDY, max_new_tokens=24))
    assert compiled_conversation.messages[-1]["content"] == plain_conversation.messages[-1]["content"]
    assert compiled.stats.cached_tokens == dynamic.stats.cached_tokens > 0

    # A cleared cache is emptied in place and refilled from the first token.
    compiled.reset_cache()
    compiled_conversation.messages.pop()
    list(compiled.stream(compiled_conversation, **GREEDY, max_new_tokens=24))
    assert compiled.stats.cached_tokens == 0
    assert compiled_conversation.messages[-1]["content"] == plain_conversation.messages[-1]["content"]

    # Prompt lookup cannot run on a static cache: compiled decoding drops it and still answers as plain decoding.
    for engine, conversation in ((dynamic, plain_conversation), (compiled, compiled_conversation)):
        conversation.add("user", "fourth question")
        list(engine.stream(conversation, **GREEDY, max_new_tokens=24, prompt_lookup_num_tokens=3))
    assert compiled_conversation.messages[-1]["content"] == plain_conversation.messages[-1]["content"]


def test_a_bad_quantize_value_exits_2_naming_the_choices(starchat_cmd, cli_env, tiny_model):
    result = subprocess.run([*starchat_cmd, "-p", "hi", "-m", tiny_model, "--quantize", "int4"], stdin=subprocess.DEVNULL,
                            env=cli_env, capture_output=True, timeout=120)
    assert_one_line_error(result, 2, "--quantize", "'int8'")


def test_int8_without_optimum_quanto_exits_3_naming_the_extra(starchat_cmd, cli_env, tiny_model, tmp_path):
    # An `optimum` package without `quanto`, ahead of site-packages: the interpreter sees what a machine without
    # the int8 extra has. There is no other way to uninstall a package for one subprocess.
    (tmp_path / "shadow" / "optimum").mkdir(parents=True)
    (tmp_path / "shadow" / "optimum" / "__init__.py").write_text("")
    env = {**cli_env, "PYTHONPATH": str(tmp_path / "shadow")}
    result = subprocess.run([*starchat_cmd, "-p", "hi", "-m", tiny_model, "--quantize", "int8"], stdin=subprocess.DEVNULL,
                            env=env, capture_output=True, timeout=120)
    assert_one_line_error(result, 3, "--quantize int8 needs optimum-quanto", "pip install 'starchat-tui[int8]'")
