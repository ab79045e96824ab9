"""Fitting a conversation's history into a model's context window.

The system message and the newest turns stay; whole oldest turns go. A turn is a user message and the
replies that follow it, so a question is never kept without its context or an answer without its
question. Nothing is cut silently: the result says what was dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


class ContextOverflow(ValueError):
    """Even the system message and the newest turn alone do not fit."""


@dataclass
class FittedHistory:
    messages: list[Mapping[str, Any]]
    dropped: list[Mapping[str, Any]] = field(default_factory=list)
    tokens: int = 0

    @property
    def dropped_turns(self) -> int:
        return sum(1 for m in self.dropped if m.get("role") == "user")


def split_turns(messages: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], list[list[Mapping[str, Any]]]]:
    """Split into (system messages, turns); each turn starts at a user message."""
    head: list[Mapping[str, Any]] = []
    turns: list[list[Mapping[str, Any]]] = []
    for message in messages:
        if message.get("role") == "system" and not turns:
            head.append(message)
        elif message.get("role") == "user" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return head, turns


def fit_history(
    messages: Sequence[Mapping[str, Any]],
    budget: int,
    count_tokens: Callable[[Sequence[Mapping[str, Any]]], int],
) -> FittedHistory:
    """Drop whole oldest turns until ``count_tokens(messages) <= budget``.

    ``count_tokens`` measures a whole rendered message list, so template overhead is counted exactly.
    Turns are dropped in one search rather than one by one, because rendering is the expensive part.
    """
    total = count_tokens(messages)
    if total <= budget:
        return FittedHistory(list(messages), [], total)
    head, turns = split_turns(messages)

    def kept_from(start: int) -> list[Mapping[str, Any]]:
        return head + [m for turn in turns[start:] for m in turn]

    # The token count falls as more turns are dropped, so binary-search the fewest turns to drop.
    low, high = 1, len(turns) - 1
    best: int | None = None
    while low <= high:
        middle = (low + high) // 2
        if count_tokens(kept_from(middle)) <= budget:
            best, high = middle, middle - 1
        else:
            low = middle + 1
    if best is None:
        newest = count_tokens(kept_from(len(turns) - 1)) if turns else total
        raise ContextOverflow(
            f"the newest message alone needs {newest} tokens but only {budget} fit in the context; "
            "shorten it or lower max_new_tokens"
        )
    kept = kept_from(best)
    dropped = [m for turn in turns[:best] for m in turn]
    return FittedHistory(kept, dropped, count_tokens(kept))
