"""The demo model's tokenizer: byte-level BPE trained on the demo corpus, with the StarChat tokens.

Byte-level, as StarCoder's is, so any text a user types still encodes (an unseen word costs more tokens,
it is never lost), with GPT-2's word split except at underscores (:data:`WORDS`). Trained on the corpus
as the model will see it, rendered through the StarChat formatter, so the words, numbers and code
idioms of the corpus are single tokens. (Keeping whole identifiers as single tokens trained slower and
scored lower in our measurements; keeping the underscore with the next word took pass@1 on requests in
everyday words from 20% to 58% at the same training.) ``<|endoftext|>`` is id 0, then the four
StarChat tokens, in the released StarChat models' order (their ids differ only because this
vocabulary is small).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..chat.template import CHAT_TEMPLATE, END_OF_TEXT_TOKEN, SPECIAL_TOKENS

# GPT-2's word split, except that an underscore stays with the word after it: "largest_even_value" is
# "largest", "_even", "_value". Split at every underscore, a name's pieces all follow the same "_" token,
# and a model this small, copying a name from the request, loses its place among them
# ("first_first_first..."); with the underscore attached, each piece follows a distinct one. Numbers
# never take the space before them, so "between 25 and 64" and "max(25, min(64, x))" hold the same
# number tokens and a constant is copied, not translated.
WORDS = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|_+\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}_]+|_+|\s+(?!\S)|\s+"""


def train_tokenizer(texts: Iterable[str], vocab_size: int, words: str | None = WORDS):
    """A fast tokenizer with ``vocab_size`` entries (fewer if the corpus has fewer merges to offer).

    ``words`` is the word split; None keeps GPT-2's own, as the placeholder model of :mod:`.tiny` does.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    if words is None:
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(words), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
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
