"""One dialogue to token ids and loss labels, rendered through the shared StarChat formatter.

The text is exactly ``render(messages, add_generation_prompt=False)`` and the ids are exactly what the
tokenizer makes of that whole string: the dialogue is tokenized once, in one piece, and the labels are
read off the tokenizer's character offsets. Nothing is tokenized turn by turn, so no BPE merge at a turn
boundary can make the training ids differ from the ids the model sees at inference.

Labels (``-100`` means "not trained"):

* ``-100`` for the system block, for every user turn (``<|user|>`` through its ``<|end|>\\n``) and for
  each ``<|assistant|>\\n`` header;
* equal to ``input_ids`` for each assistant reply and the ``<|end|>`` that closes it;
* ``-100`` for the ``\\n`` after that ``<|end|>``. Generation stops at ``<|end|>``, so the model never
  writes this newline; the formatter adds it when it renders the next turn. Training on it would only
  add an always-predictable token to the loss.

A token is trained when it *starts* inside a reply. Byte-level BPE can merge the header's ``\\n`` with
newlines or spaces that open a reply (``"<|assistant|>\\n\\n\\ncode"`` gives one ``"\\n\\n\\n"`` token);
such a token starts in the header, so it stays masked: header bytes are never trained, at the cost of
those few leading whitespace characters of the reply. ``<|end|>`` and the other StarChat tokens are
special tokens, so they are always tokens of their own and never merge with their neighbours.

Labels are built for each dialogue on a fresh list, before any packing, so no list is shared with
``input_ids`` and a packed sequence can never cut a turn in half before it is masked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from ..chat.template import END_TOKEN, render, render_turn, split_system

IGNORE_INDEX = -100
_SENTINEL = "\x00starchat-tui-reply\x00"


@lru_cache(maxsize=1)
def _reply_layout() -> tuple[str, str]:
    """The assistant header and the untrained tail after ``<|end|>``, read off the formatter itself."""
    turn = render_turn("assistant", _SENTINEL)
    header, footer = turn.split(_SENTINEL)
    if not footer.startswith(END_TOKEN):
        raise AssertionError(f"the StarChat formatter no longer closes a reply with {END_TOKEN}")
    return header, footer[len(END_TOKEN):]


def render_with_spans(messages: Iterable[Mapping[str, Any]]) -> tuple[str, list[tuple[int, int]]]:
    """The training text and the ``[start, end)`` character spans that are trained (reply + ``<|end|>``)."""
    messages = list(messages)
    system, turns = split_system(messages)
    header, tail = _reply_layout()
    # The system block exactly as the formatter writes it for this dialogue (empty system included).
    parts = [render(messages[: len(messages) - len(turns)], add_generation_prompt=False)]
    position = len(parts[0])
    spans: list[tuple[int, int]] = []
    for message in turns:
        role, content = str(message["role"]), str(message.get("content") or "")
        if role == "assistant":
            start = position + len(header)
            spans.append((start, start + len(content) + len(END_TOKEN)))
        text = render_turn(role, content)
        parts.append(text)
        position += len(text)
    return "".join(parts), spans


def _labels_from_offsets(
    input_ids: Sequence[int], offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]
) -> list[int]:
    """A fresh label list: a token is trained when its first character lies inside a trained span."""
    labels = [IGNORE_INDEX] * len(input_ids)
    span_index = 0
    for position, (token_id, (start, end)) in enumerate(zip(input_ids, offsets)):
        if end <= start:  # tokens the tokenizer added itself (a BOS), which cover no text
            continue
        while span_index < len(spans) and spans[span_index][1] <= start:
            span_index += 1
        if span_index < len(spans) and spans[span_index][0] <= start:
            labels[position] = token_id
    return labels


def _require_fast(tokenizer) -> None:
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{type(tokenizer).__name__} is a slow tokenizer: encoding needs a fast (Rust) tokenizer, "
            "which gives the character offsets the loss mask is read from"
        )


def encode_dialogues(
    tokenizer, dialogues: Iterable[Iterable[Mapping[str, Any]]], max_length: int | None = None, *, batch_size: int = 512
) -> Iterator[dict[str, Any]]:
    """Encode many dialogues, tokenizing in batches; yields what :func:`encode_dialogue` returns, in order."""
    _require_fast(tokenizer)
    batch: list[tuple[str, list[tuple[int, int]]]] = []
    for messages in dialogues:
        batch.append(render_with_spans(messages))
        if len(batch) >= batch_size:
            yield from _encode_batch(tokenizer, batch, max_length)
            batch = []
    if batch:
        yield from _encode_batch(tokenizer, batch, max_length)


def _encode_batch(tokenizer, batch, max_length: int | None) -> Iterator[dict[str, Any]]:
    encoded = tokenizer(
        [text for text, _ in batch],
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,  # long dialogues are cut below, not by the tokenizer, and need no warning
    )
    for input_ids, offsets, (_, spans) in zip(encoded["input_ids"], encoded["offset_mapping"], batch):
        input_ids = list(input_ids)
        labels = _labels_from_offsets(input_ids, offsets, spans)
        truncated = max_length is not None and len(input_ids) > max_length
        if truncated:
            input_ids, labels = input_ids[:max_length], labels[:max_length]
        yield {
            "input_ids": input_ids,
            "labels": labels,
            "attention_mask": [1] * len(input_ids),
            "truncated": truncated,
        }


def encode_dialogue(tokenizer, messages: Iterable[Mapping[str, Any]], max_length: int | None = None) -> dict[str, Any]:
    """Encode one dialogue: ``{"input_ids", "labels", "attention_mask", "truncated"}``, each a fresh list.

    ``max_length`` keeps the first tokens and drops the rest (``truncated`` says so); a reply cut short
    keeps its trained tokens but loses its ``<|end|>``, so the model is never taught to stop mid-reply.
    Raises ``ValueError`` for a dialogue the StarChat format cannot express (an unknown role, a late
    system turn) and for a slow tokenizer.
    """
    return next(encode_dialogues(tokenizer, [messages], max_length))
