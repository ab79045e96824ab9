"""Turning messages into the exact prompt a model sees, and fitting input into its context.

A tokenizer that carries its own chat template (StarChat2's ChatML, any other chat model) uses it;
tokenizers without one, StarChat alpha and beta among them, get the StarChat template from
:mod:`starchat_tui.chat.template`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..chat import template
from ..chat.attachments import Attachment, compose_prompt
from ..chat.context import ContextOverflow, FittedHistory, fit_history
from ..errors import UsageError

# Context length keys, in the order model configs use them.
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length")
FALLBACK_CONTEXT = 2048


def context_limit_of(config: Any, tokenizer: Any = None) -> int:
    for key in CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    # Tokenizers without a limit report a huge sentinel (int(1e30)); that is not a context size.
    if isinstance(limit, int) and 0 < limit < 10_000_000:
        return limit
    return FALLBACK_CONTEXT


class PromptRenderer:
    """Renders and counts prompts for one tokenizer and context size; loads no model."""

    def __init__(self, tokenizer: Any, context_limit: int) -> None:
        self.tokenizer = tokenizer
        self.context_limit = context_limit

    @property
    def uses_own_template(self) -> bool:
        """True for a tokenizer with a chat template of its own, not the StarChat one."""
        own = getattr(self.tokenizer, "chat_template", None)
        return bool(own) and own != template.CHAT_TEMPLATE

    @property
    def template_source(self) -> str:
        return self.tokenizer.chat_template if self.uses_own_template else template.CHAT_TEMPLATE

    def render_prompt(self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = True) -> str:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        if self.uses_own_template:
            return self.tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=add_generation_prompt)
        if add_generation_prompt:
            return template.render_for_generation(plain)
        return template.render(plain, add_generation_prompt=False)

    def encode(self, text: str) -> list[int]:
        # The template writes any BOS itself; letting the tokenizer add another would double it.
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def count_messages(self, messages: Sequence[Mapping[str, Any]]) -> int:
        return self.count_tokens(self.render_prompt(messages))

    def reply_reserve(self, max_new_tokens: int) -> int:
        """Tokens kept free for the reply: all of max_new_tokens, but never more than a quarter of the context."""
        return max(1, min(max_new_tokens, self.context_limit // 4))

    def prompt_budget(self, max_new_tokens: int) -> int:
        return self.context_limit - self.reply_reserve(max_new_tokens)

    def fit(self, messages: Sequence[Mapping[str, Any]], max_new_tokens: int) -> FittedHistory:
        try:
            return fit_history(messages, self.prompt_budget(max_new_tokens), self.count_messages)
        except ContextOverflow as error:
            raise UsageError(f"{error} (the model's context is {self.context_limit} tokens)") from None


def fit_attachments(
    renderer: PromptRenderer,
    conversation: Any,
    instruction: str,
    attachments: list[Attachment],
    max_new_tokens: int,
) -> tuple[str, list[str]]:
    """Compose the user message, cutting the ends of attachments that do not fit the context.

    Returns the message and one line per cut attachment saying how much was cut.
    """
    budget = renderer.prompt_budget(max_new_tokens)

    def measure() -> tuple[str, int]:
        content = compose_prompt(instruction, attachments)
        return content, renderer.count_messages([*conversation.for_model(), {"role": "user", "content": content}])

    content, total = measure()
    originals = {id(a): (renderer.count_tokens(a.text), len(a.text.encode())) for a in attachments}
    # BPE merges across the cut and the "(cut: ...)" note shift the count a little, so re-measure and repeat.
    for _ in range(8):
        if total <= budget:
            break
        excess = total - budget
        for attachment in reversed(attachments):
            if excess <= 0:
                break
            ids = renderer.encode(attachment.text)
            take = min(len(ids), excess + 8)
            attachment.text = renderer.tokenizer.decode(ids[: len(ids) - take])
            attachment.cut_tokens += take
            excess -= take
        content, total = measure()
    if total > budget:
        raise UsageError(
            f"the prompt needs {total} tokens but only {budget} fit in the model's {renderer.context_limit}-token "
            "context, even with the attached input cut away; shorten the prompt or lower max_new_tokens"
        )
    cuts = []
    for attachment in attachments:
        if attachment.cut_tokens:
            tokens, size = originals[id(attachment)]
            kept = len(attachment.text.encode())
            cuts.append(
                f"{attachment.source}: input cut to fit the {renderer.context_limit}-token context: kept the first "
                f"{tokens - attachment.cut_tokens} of {tokens} tokens, cut {attachment.cut_tokens} tokens "
                f"({size - kept} of {size} bytes)"
            )
    return content, cuts
