"""The StarChat special tokens on a tokenizer and a model: added when missing, embeddings resized.

On a StarCoder tokenizer (49,152 tokens) the four tokens are added in the order of
``template.SPECIAL_TOKENS``, which gives the released StarChat ids: ``<|system|>`` 49152, ``<|user|>``
49153, ``<|assistant|>`` 49154, ``<|end|>`` 49155. Ids are always looked up, never assumed.

The pad token is never ``<|end|>``: padding is masked by position, but a pad id equal to the stop token
would still confuse any collator or generation code that masks by id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..chat.template import (
    ASSISTANT_TOKEN,
    CHAT_TEMPLATE,
    END_OF_TEXT_TOKEN,
    END_TOKEN,
    SPECIAL_TOKENS,
    SYSTEM_TOKEN,
    USER_TOKEN,
)

PAD_FALLBACK = "<|pad|>"


@dataclass
class TokenizerChanges:
    """What :func:`prepare_tokenizer` changed, so the run can say so."""

    added: list[str] = field(default_factory=list)
    pad_token: str | None = None
    pad_added: bool = False
    replaced_chat_template: bool = False

    def describe(self) -> list[str]:
        lines = []
        if self.added:
            lines.append(f"added the special tokens {', '.join(self.added)} to the tokenizer")
        if self.pad_added:
            lines.append(f"added {self.pad_token} as the pad token (the tokenizer had none to reuse)")
        if self.replaced_chat_template:
            lines.append("replaced the tokenizer's chat template with the StarChat one the model is trained on")
        return lines


def _is_single_token(tokenizer, text: str) -> bool:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"]) == 1


def prepare_tokenizer(tokenizer) -> TokenizerChanges:
    """Give ``tokenizer`` the StarChat tokens, a pad token that is not ``<|end|>``, and the StarChat template."""
    changes = TokenizerChanges()
    vocab = tokenizer.get_vocab()
    # A token already in the vocabulary but not marked special could still be split by BPE; registering
    # it as special keeps its id and makes it atomic.
    missing = [t for t in SPECIAL_TOKENS if t not in vocab or not _is_single_token(tokenizer, t)]
    if missing:
        tokenizer.add_special_tokens({"extra_special_tokens": missing}, replace_extra_special_tokens=False)
        changes.added = [t for t in missing if t not in vocab]

    if tokenizer.pad_token is None or tokenizer.pad_token == END_TOKEN:
        candidates = [END_OF_TEXT_TOKEN, tokenizer.eos_token]
        usable = [t for t in candidates if t and t != END_TOKEN and t in tokenizer.get_vocab()]
        if usable:
            tokenizer.pad_token = usable[0]
        else:
            tokenizer.add_special_tokens({"pad_token": PAD_FALLBACK})
            changes.pad_added = True
            changes.added.append(PAD_FALLBACK)
    changes.pad_token = tokenizer.pad_token

    if tokenizer.chat_template and tokenizer.chat_template != CHAT_TEMPLATE:
        changes.replaced_chat_template = True
    tokenizer.chat_template = CHAT_TEMPLATE
    return changes


def token_ids(tokenizer) -> dict[str, int]:
    """The id of each StarChat token in ``tokenizer``."""
    return {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}


def resize_embeddings(model, tokenizer) -> int | None:
    """Grow the embeddings to ``len(tokenizer)`` when tokens were added; returns the new size, or None.

    The size is read from the config, never from the weight: under ZeRO-3 the local weight is an empty
    shard. transformers gathers the partitioned rows itself and initialises the new ones to the mean of
    the old (``mean_resizing``), so the new tokens start as plausible embeddings instead of noise.
    """
    current = model.config.get_text_config().vocab_size
    if len(tokenizer) <= current:
        return None
    model.resize_token_embeddings(len(tokenizer), mean_resizing=True)
    return len(tokenizer)


def generation_config_for(model, tokenizer):
    """The model's generation config with StarChat's stops: eos = [``<|end|>``, end-of-text], cache on."""
    from transformers import GenerationConfig

    config = GenerationConfig.from_dict(model.generation_config.to_dict()) if model.generation_config else GenerationConfig()
    end_id = tokenizer.convert_tokens_to_ids(END_TOKEN)
    eos = [end_id]
    for token in (tokenizer.eos_token, END_OF_TEXT_TOKEN):
        token_id = tokenizer.convert_tokens_to_ids(token) if token and token in tokenizer.get_vocab() else None
        if token_id is not None and token_id not in eos:
            eos.append(token_id)
    config.eos_token_id = eos
    config.pad_token_id = tokenizer.pad_token_id
    config.use_cache = True
    # The StarChat model cards' sampling settings, so plain `pipeline(...)` users get the intended behaviour.
    config.do_sample = True
    config.temperature = 0.2
    config.top_k = 50
    config.top_p = 0.95
    return config


def dialogue_template() -> dict:
    """The ``dialogue_template.json`` the original StarChat repositories ship (162 bytes, indent 2)."""
    return {
        "system": "",
        "messages": None,
        "system_token": SYSTEM_TOKEN,
        "user_token": USER_TOKEN,
        "assistant_token": ASSISTANT_TOKEN,
        "end_token": END_TOKEN,
    }


def write_dialogue_template(folder: str | Path) -> Path:
    path = Path(folder) / "dialogue_template.json"
    path.write_text(json.dumps(dialogue_template(), indent=2))
    return path
