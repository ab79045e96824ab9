"""The dialogue template: byte-exact StarChat format, and the Jinja copy agrees with the Python one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starchat_tui.chat import template
from starchat_tui.chat.conversation import Conversation
from starchat_tui.chat.template import CHAT_TEMPLATE, TemplateError, render


def test_seed_format_byte_for_byte():
    messages = [
        {"role": "system", "content": "Below is a conversation between a human user and a helpful AI coding assistant."},
        {"role": "user", "content": "How do I sort a list in Python?"},
        {"role": "assistant", "content": "Use sorted()."},
        {"role": "user", "content": "Thanks"},
    ]
    assert render(messages) == (
        "<|system|>\nBelow is a conversation between a human user and a helpful AI coding assistant.<|end|>\n"
        "<|user|>\nHow do I sort a list in Python?<|end|>\n"
        "<|assistant|>\nUse sorted().<|end|>\n"
        "<|user|>\nThanks<|end|>\n"
        "<|assistant|>"
    )


def test_model_card_prompt_with_empty_system():
    # starchat-beta's card: "<|system|>\n<|end|>\n<|user|>\n{query}<|end|>\n<|assistant|>"
    query = "How do I sort a list in Python?"
    expected = f"<|system|>\n<|end|>\n<|user|>\n{query}<|end|>\n<|assistant|>"
    assert render([{"role": "user", "content": query}]) == expected
    assert render([{"role": "system", "content": ""}, {"role": "user", "content": query}]) == expected


def test_training_rendering_has_no_generation_prompt_and_system_stays_system():
    text = render(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}],
        add_generation_prompt=False,
    )
    assert text == "<|system|>\nS<|end|>\n<|user|>\nU<|end|>\n<|assistant|>\nA<|end|>\n"
    # The original code rendered system turns with the assistant token; the seed's snippet had the same typo.
    assert text.count("<|assistant|>") == 1


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "tool", "content": "x"}],
        [{"role": "user", "content": "a"}, {"role": "system", "content": "late"}],
    ],
)
def test_roles_the_format_cannot_express_are_refused(messages, tiny_model):
    from transformers import AutoTokenizer

    with pytest.raises(TemplateError):
        render(messages)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    with pytest.raises(Exception, match="StarChat dialogues take user and assistant turns"):
        tokenizer.apply_chat_template(messages, tokenize=False)


# Contents that stress the two implementations: empty, unicode, code fences, newlines at the edges,
# Jinja syntax, and the special tokens themselves written as plain text.
tricky_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "",
            "\n",
            "```python\nprint('hi')\n```",
            "<|end|>",
            "<|user|>\nnot really a turn<|end|>\n<|assistant|>",
            "{{ messages }} {% if true %}x{% endif %}",
            "naïve café — 日本語 — 🙂",
            "  leading and trailing spaces  ",
            "tab\tand\r\ncarriage return",
        ]
    ),
)


@st.composite
def dialogues(draw):
    messages = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(tricky_text)})
    # apply_chat_template refuses an empty list, so every dialogue has at least one turn.
    for index in range(draw(st.integers(min_value=1, max_value=6))):
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": draw(tricky_text)})
    return messages


@pytest.fixture(scope="module")
def starchat_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    assert tokenizer.chat_template == CHAT_TEMPLATE
    return tokenizer


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=dialogues(), add_generation_prompt=st.booleans())
def test_jinja_template_matches_python_formatter(starchat_tokenizer, messages, add_generation_prompt):
    jinja = starchat_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    assert jinja == render(messages, add_generation_prompt=add_generation_prompt)


def test_jinja_template_matches_on_the_datasets_format(starchat_tokenizer):
    conversation = Conversation(system="sys ✓")
    conversation.add("user", "```\ncode\n```")
    conversation.add("assistant", "<|end|> inside")
    conversation.add("user", "")
    restored = Conversation.from_json(conversation.to_json())
    jinja = starchat_tokenizer.apply_chat_template(restored.messages, tokenize=False, add_generation_prompt=True)
    assert jinja == render(restored.messages)


def test_conversation_api_and_json_round_trip():
    conversation = Conversation(system="Be brief.")
    conversation.add("user", "Hi")
    conversation.add("assistant", "Hello", interrupted=True)
    assert conversation.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello", "interrupted": True},
    ]
    data = json.loads(conversation.to_json())
    assert data == {"messages": conversation.messages}
    assert Conversation.from_messages(data["messages"]) == conversation
    assert Conversation.from_json(conversation.to_json()) == conversation
    assert Conversation().messages == []
    with pytest.raises(ValueError, match="system message can only be the first"):
        conversation.add("system", "late")
    with pytest.raises(ValueError, match="unknown role"):
        conversation.add("robot", "x")


def test_system_setter_keeps_it_first():
    conversation = Conversation()
    conversation.add("user", "q")
    conversation.system = "now set"
    assert conversation.messages[0] == {"role": "system", "content": "now set"}
    conversation.system = None
    assert conversation.messages == [{"role": "user", "content": "q"}]


def test_chat_package_imports_neither_torch_nor_textual():
    code = (
        "import sys, starchat_tui.chat, starchat_tui.chat.context, starchat_tui.chat.attachments, starchat_tui.chat.inert;"
        "bad = [m for m in ('torch', 'textual', 'transformers') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_tokens_are_the_starchat_ones():
    assert template.SPECIAL_TOKENS == ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
