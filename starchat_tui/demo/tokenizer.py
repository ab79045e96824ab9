"""The demo model's tokenizer: byte-level BPE trained on the demo corpus, with the StarChat tokens.

Byte-level with GPT-2's pre-tokenizer, as StarCoder's is, so any text a user types still encodes (an
unseen word costs more tokens, it is never lost). Trained on the corpus as the model will see it,
rendered through the StarChat formatter, so the words, numbers and code idioms of the corpus are
single tokens. (Keeping whole identifiers as single tokens, which might make names easier to copy,
trained slower and scored lower in our measurements.) ``<|endoftext|>`` is id 0, then the four
StarChat tokens, in the released StarChat models' order (their ids differ only because this
vocabulary is small).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..chat.template import CHAT_TEMPLATE, END_OF_TEXT_TOKEN, SPECIAL_TOKENS


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A fast tokenizer with ``vocab_size`` entries (fewer if the corpus has fewer merges to offer)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT_TOKEN, *SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # The special tokens are registered with the trainer, so their text never becomes merges.
    tokenizer.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=END_OF_TEXT_TOKEN,
        eos_token=END_OF_TEXT_TOKEN,
        unk_token=END_OF_TEXT_TOKEN,
        pad_token=END_OF_TEXT_TOKEN,
        additional_special_tokens=list(SPECIAL_TOKENS),
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
