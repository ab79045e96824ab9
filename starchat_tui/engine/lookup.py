"""Prompt-lookup decoding, for the questions whose answer copies code that is already in the prompt.

Reviewing a file, fixing a function or rewriting an attached file gives an answer that repeats long runs of
the question's code. transformers' prompt lookup (``prompt_lookup_num_tokens``) drafts the next tokens by
finding the last few generated tokens in the prompt and proposing what followed them there; one forward pass
then checks the whole draft. Each accepted token is a pass over the weights saved, and a token the model
would not have chosen is never kept: greedy text is token for token what plain decoding writes, and sampling
keeps its distribution.

On a question with nothing to copy, each step checks a draft that is mostly rejected, which costs a little
more than a one-token step; so lookup is on only where the question holds code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..chat.blocks import blocks_in
from ..errors import UsageError

OPTION = "prompt_lookup_num_tokens"
# Tokens drafted per lookup step. Measured with bench/bench_lookup.py on the shared 2-core machine: on the demo
# model's 25 fix-the-bug tasks, drafts of 3, 10 and 20 accepted 1.49, 1.63 and 1.68 tokens a pass; in tok/s
# against plain, 0.94x/0.98x/1.00x in one run and 1.09x/1.28x/1.20x in another (load 2.5-2.6: a model that
# small is bound by Python, not by its weights). On the 1B shape a pass of 11 tokens cost 3.2x-4x a one-token pass (902 vs
# 286 ms), yet on an answer that repeated itself (lookup drafts from the reply too) decoding ran 1.62x-1.70x
# plain with 10 drafted, 1.38x with 3: a long draft pays where the copying is long.
DRAFT_TOKENS = 10
# A one-line block is a name or a command, too short to copy from.
MIN_BLOCK_LINES = 2


def question_holds_code(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the last user message (its attached files included: they are fenced blocks in it) holds a
    code block of at least MIN_BLOCK_LINES lines."""
    question = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    if question is None:
        return False
    return any(code.count("\n") + 1 >= MIN_BLOCK_LINES for _, code, _ in blocks_in(str(question.get("content") or "")))


def lookup_tokens(messages: Sequence[Mapping[str, Any]], options: dict[str, Any]) -> int:
    """How many tokens each step drafts from the prompt for a reply to ``messages``; 0 decodes one at a time.

    Takes the user's own ``prompt_lookup_num_tokens`` out of ``options``: a number overrides the rule, 0 is off.
    """
    chosen = options.pop(OPTION, None)
    if chosen is not None:
        if not isinstance(chosen, int) or isinstance(chosen, bool) or chosen < 0:
            raise UsageError(f"{OPTION} must be a whole number >= 0 (0 turns prompt lookup off), not {chosen!r}")
        return chosen
    return DRAFT_TOKENS if question_holds_code(messages) else 0
