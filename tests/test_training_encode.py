"""encode_dialogue: ids through the one formatter, labels exact against an independent reference."""

from __future__ import annotations

import random

import pytest

from starchat_tui.chat.template import ASSISTANT_TOKEN, END_TOKEN, SYSTEM_TOKEN, USER_TOKEN, render, render_turn
from starchat_tui.training import IGNORE_INDEX, encode_dialogue
from starchat_tui.training.encode import render_with_spans

WORDS = ["def", "sort", "list", "Python", "the", "value", "x", "return", "(", ")", ":", "é", "日本", "🙂",
         "```", "print", "=", "+", "items", "a", "b", "len"]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def reference(tokenizer, messages):
    """Labels built the slow, obvious way: tokenize each piece alone and mark the reply pieces.

    Only valid where no BPE merge crosses a piece boundary, which holds when no reply starts with
    whitespace (the pieces meet at special tokens or at the header's newline).
    """
    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    turns = messages[1:] if messages and messages[0]["role"] == "system" else messages
    input_ids, labels = [], []

    def add(text, trained):
        piece = ids(text)
        input_ids.extend(piece)
        labels.extend(piece if trained else [IGNORE_INDEX] * len(piece))

    add(render_turn("system", system), False)
    for message in turns:
        if message["role"] == "user":
            add(render_turn("user", message["content"]), False)
        else:
            add(ASSISTANT_TOKEN + "\n", False)
            add(message["content"], True)
            add(END_TOKEN, True)
            add("\n", False)
    return input_ids, labels


def random_text(rng, *, long=False):
    count = rng.randint(40, 120) if long else rng.randint(1, 12)
    text = " ".join(rng.choice(WORDS) for _ in range(count))
    if rng.random() < 0.2:
        text += "\n" + " ".join(rng.choice(WORDS) for _ in range(3))
    if rng.random() < 0.15:
        text = text + " " + rng.choice([END_TOKEN, USER_TOKEN, ASSISTANT_TOKEN, SYSTEM_TOKEN]) + " tail"
    return text.lstrip()


def random_dialogue(rng):
    messages = []
    if rng.random() < 0.5:
        messages.append({"role": "system", "content": random_text(rng)})
    for _ in range(rng.randint(1, 5)):
        messages.append({"role": "user", "content": random_text(rng, long=rng.random() < 0.2)})
        messages.append({"role": "assistant", "content": random_text(rng, long=rng.random() < 0.2)})
    if rng.random() < 0.2:
        messages.append({"role": "user", "content": random_text(rng)})  # ends on a user turn
    return messages


DIALOGUES = [random_dialogue(random.Random(seed)) for seed in range(150)]


def test_matches_reference_and_whole_string_tokenization_on_150_dialogues(tokenizer):
    # With and without a system turn, 1-5 exchanges, long turns, ending on a user turn, and StarChat
    # tokens spelled out inside the text.
    kinds = {"system": 0, "no system": 0, "multi-turn": 0, "ends on user": 0, "special text": 0}
    for number, messages in enumerate(DIALOGUES):
        encoded = encode_dialogue(tokenizer, messages, max_length=None)
        text = render(messages, add_generation_prompt=False)
        assert encoded["input_ids"] == tokenizer(text)["input_ids"], number
        ref_ids, ref_labels = reference(tokenizer, messages)
        assert encoded["input_ids"] == ref_ids, number
        assert encoded["labels"] == ref_labels, number
        assert encoded["attention_mask"] == [1] * len(ref_ids)
        assert IGNORE_INDEX not in encoded["input_ids"]
        kinds["system" if messages[0]["role"] == "system" else "no system"] += 1
        kinds["multi-turn"] += sum(m["role"] == "assistant" for m in messages) > 1
        kinds["ends on user"] += messages[-1]["role"] == "user"
        kinds["special text"] += any(t in m["content"] for m in messages for t in (END_TOKEN, USER_TOKEN))
    assert min(kinds.values()) >= 10, kinds


def test_training_text_is_the_formatters_text_byte_for_byte():
    for messages in DIALOGUES:
        text, spans = render_with_spans(messages)
        assert text == render(messages, add_generation_prompt=False)
        replies = [m["content"] for m in messages if m["role"] == "assistant"]
        assert [text[a:b] for a, b in spans] == [r + END_TOKEN for r in replies]


def test_what_is_trained_in_one_exchange(tokenizer):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Hello there"},
    ]
    encoded = encode_dialogue(tokenizer, messages)
    tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    trained = [t for t, label in zip(tokens, encoded["labels"]) if label != IGNORE_INDEX]
    assert tokenizer.convert_tokens_to_string(trained) == "Hello there" + END_TOKEN
    # The newline after <|end|> closes the dialogue and is not trained; <|end|> right before it is.
    assert tokens[-2:] == [END_TOKEN, "Ċ"]
    assert encoded["labels"][-1] == IGNORE_INDEX
    assert encoded["labels"][-2] == tokenizer.convert_tokens_to_ids(END_TOKEN)
    # Every header and the whole system and user turns are masked.
    masked = [t for t, label in zip(tokens, encoded["labels"]) if label == IGNORE_INDEX]
    for special in (SYSTEM_TOKEN, USER_TOKEN, ASSISTANT_TOKEN):
        assert special in masked


def test_every_reply_end_is_trained_and_every_turn_newline_is_not(tokenizer):
    end_id = tokenizer.convert_tokens_to_ids(END_TOKEN)
    for messages in DIALOGUES:
        encoded = encode_dialogue(tokenizer, messages)
        ids, labels = encoded["input_ids"], encoded["labels"]
        ends = [i for i, token in enumerate(ids) if token == end_id and (i + 1 == len(ids) or ids[i + 1] != end_id)]
        replies = sum(m["role"] == "assistant" for m in messages)
        # Closing <|end|>s are followed by the turn newline; the trained ones are exactly the replies'.
        closing = [i for i in ends if i + 1 < len(ids) and tokenizer.decode([ids[i + 1]]) == "\n"]
        trained_closing = [i for i in closing if labels[i] == end_id]
        assert len(trained_closing) >= replies
        assert all(labels[i + 1] == IGNORE_INDEX for i in closing)


def test_cut_mid_turn_keeps_a_prefix_of_the_full_encoding(tokenizer):
    messages = DIALOGUES[3]
    full = encode_dialogue(tokenizer, messages)
    for length in range(1, len(full["input_ids"]) + 3):
        cut = encode_dialogue(tokenizer, messages, max_length=length)
        assert cut["input_ids"] == full["input_ids"][:length]
        assert cut["labels"] == full["labels"][:length]
        assert cut["truncated"] == (length < len(full["input_ids"]))


def test_labels_are_a_fresh_list(tokenizer):
    encoded = encode_dialogue(tokenizer, DIALOGUES[0])
    assert encoded["labels"] is not encoded["input_ids"]
    before = list(encoded["input_ids"])
    encoded["labels"][:] = [IGNORE_INDEX] * len(encoded["labels"])
    assert encoded["input_ids"] == before


def test_a_dialogue_without_a_reply_trains_nothing(tokenizer):
    encoded = encode_dialogue(tokenizer, [{"role": "user", "content": "anyone there?"}])
    assert set(encoded["labels"]) == {IGNORE_INDEX}


def test_reply_opening_with_whitespace_never_trains_header_bytes(tokenizer):
    # Byte-level BPE may merge the header's newline with the reply's leading whitespace into one
    # token. That token starts in the header, so it stays masked; the ids still equal tokenizing the
    # whole rendered string.
    messages = [{"role": "user", "content": "code?"}, {"role": "assistant", "content": "\n\n  def x"}]
    encoded = encode_dialogue(tokenizer, messages)
    text, spans = render_with_spans(messages)
    enc = tokenizer(text, return_offsets_mapping=True)
    assert encoded["input_ids"] == enc["input_ids"]
    reply_start = spans[0][0]
    for (start, _), label in zip(enc["offset_mapping"], encoded["labels"]):
        assert (label != IGNORE_INDEX) == (reply_start <= start < spans[0][1])
    trained = [t for t, label in zip(encoded["input_ids"], encoded["labels"]) if label != IGNORE_INDEX]
    assert tokenizer.decode(trained).endswith("def x" + END_TOKEN)


def test_special_token_text_inside_a_message_tokenizes_as_in_chat(tokenizer):
    reply = f"Turns end with {END_TOKEN} in StarChat."
    messages = [{"role": "user", "content": f"What is {END_TOKEN}?"}, {"role": "assistant", "content": reply}]
    encoded = encode_dialogue(tokenizer, messages)
    assert encoded["input_ids"] == tokenizer(render(messages, add_generation_prompt=False))["input_ids"]
    trained = [t for t, label in zip(encoded["input_ids"], encoded["labels"]) if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == reply + END_TOKEN


def test_a_tokenizer_that_adds_bos_keeps_it_masked(tiny_model):
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", 0)]
    )
    messages = DIALOGUES[1]
    encoded = encode_dialogue(tokenizer, messages)
    plain_ids, plain_labels = reference(tokenizer, messages)
    assert encoded["input_ids"] == [0] + plain_ids
    assert encoded["labels"] == [IGNORE_INDEX] + plain_labels


@pytest.mark.parametrize("messages", [
    [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}],
    [{"role": "user", "content": "a"}, {"role": "system", "content": "late"}],
])
def test_dialogues_the_format_cannot_express_are_refused(tokenizer, messages):
    with pytest.raises(ValueError):
        encode_dialogue(tokenizer, messages)
