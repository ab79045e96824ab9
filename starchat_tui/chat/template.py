"""The StarChat dialogue format: the one formatter every part of starchat-tui renders through.

A dialogue renders as::

    <|system|>\\n{system}<|end|>\\n<|user|>\\n{user}<|end|>\\n<|assistant|>\\n{assistant}<|end|>\\n ...

and a generation prompt ends in ``<|assistant|>``, exactly as the starchat-beta model card prompts it.
The system turn is always present, empty when there is no system message, because the released
models were trained that way.

The same format exists twice only in the sense of two *languages*: :func:`render` in Python and
:data:`CHAT_TEMPLATE` in Jinja for ``tokenizer.apply_chat_template``. The test suite holds them to the
same bytes; nothing else in the project may format a dialogue by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

SYSTEM_TOKEN = "<|system|>"
USER_TOKEN = "<|user|>"
ASSISTANT_TOKEN = "<|assistant|>"
END_TOKEN = "<|end|>"
END_OF_TEXT_TOKEN = "<|endoftext|>"

ROLE_TOKENS = {"system": SYSTEM_TOKEN, "user": USER_TOKEN, "assistant": ASSISTANT_TOKEN}
SPECIAL_TOKENS = (SYSTEM_TOKEN, USER_TOKEN, ASSISTANT_TOKEN, END_TOKEN)

# Kept on one logical line per statement: the whitespace-control dashes mean the layout of the source
# never reaches the output, and the tests compare this against render() byte for byte.
CHAT_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system_message = messages[0]['content'] -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}"
    "{%- set system_message = '' -%}"
    "{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{{- '<|system|>\\n' + (system_message or '') + '<|end|>\\n' -}}"
    "{%- for message in loop_messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- '<|user|>\\n' + message['content'] + '<|end|>\\n' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- '<|assistant|>\\n' + message['content'] + '<|end|>\\n' -}}"
    "{%- else -%}"
    "{{- raise_exception('StarChat dialogues take user and assistant turns after an optional first system turn, "
    "not ' + message['role']) -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|assistant|>' -}}"
    "{%- endif -%}"
)


class TemplateError(ValueError):
    """A dialogue that the StarChat format cannot express (an unknown role, a late system turn)."""


def split_system(messages: Iterable[Mapping[str, object]]) -> tuple[str, list[Mapping[str, object]]]:
    """Return the system text ('' when absent) and the turns after it, validating roles on the way."""
    messages = list(messages)
    system = ""
    if messages and messages[0].get("role") == "system":
        system = str(messages[0].get("content") or "")
        messages = messages[1:]
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            where = "a system turn after the first message" if role == "system" else f"role {role!r}"
            raise TemplateError(
                f"message {index + (1 if system else 0)}: StarChat dialogues take user and assistant "
                f"turns after an optional first system turn, not {where}"
            )
    return system, messages


def render_turn(role: str, content: str) -> str:
    """One complete turn, header to ``<|end|>\\n``."""
    return f"{ROLE_TOKENS[role]}\n{content}{END_TOKEN}\n"


def render(messages: Iterable[Mapping[str, object]], *, add_generation_prompt: bool = True) -> str:
    """Render a dialogue in the StarChat format; with ``add_generation_prompt`` it ends in ``<|assistant|>``."""
    system, turns = split_system(messages)
    parts = [render_turn("system", system)]
    parts.extend(render_turn(str(m["role"]), str(m.get("content") or "")) for m in turns)
    if add_generation_prompt:
        parts.append(ASSISTANT_TOKEN)
    return "".join(parts)


def render_for_generation(messages: Iterable[Mapping[str, object]]) -> str:
    """The prompt an engine feeds: the generation prompt plus the newline that completes the assistant header.

    StarChat models generate that newline themselves, with near certainty, so feeding it changes nothing
    for them. Models trained with the ``<|assistant|>\n`` header masked, as starchat-tui trains them, were
    never taught to produce it and need it given. Either way the reply then re-renders to exactly the
    tokens the model saw, so the next turn reuses the whole KV cache.
    """
    return render(messages, add_generation_prompt=True) + "\n"
