"""From validated dialogues to training rows: encode each dialogue, drop what cannot teach, pack.

Also the numbers ``--inspect`` and the run report: how many tokens, how much of it is trained, how
full the packed sequences are and how much of each batch would be padding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..chat.template import SPECIAL_TOKENS
from .collator import ExampleDataset
from .data import Dialogues
from .encode import IGNORE_INDEX, encode_dialogues
from .packing import Example, as_example, pack, padding_waste


@dataclass
class DataStats:
    """What one split looks like once encoded."""

    dialogues: int = 0
    tokens: int = 0
    trained_tokens: int = 0
    truncated: int = 0
    untrainable: int = 0  # cut so short that no reply token was left
    special_text: int = 0  # dialogues whose text spells out a StarChat token
    sequences: int = 0
    max_length: int = 0
    packed: bool = False
    waste_packed: float = 0.0
    waste_unpacked: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def masked_share(self) -> float:
        return 1 - self.trained_tokens / self.tokens if self.tokens else 0.0

    @property
    def fill(self) -> float:
        """Real tokens over the room in the sequences they were packed into."""
        return self.tokens / (self.sequences * self.max_length) if self.sequences and self.packed else 0.0

    def lines(self, batch_size: int) -> list[str]:
        lines = [
            f"dialogues      {self.dialogues:,}",
            f"tokens         {self.tokens:,}, {self.trained_tokens:,} trained "
            f"({100 * (1 - self.masked_share):.1f} %), {100 * self.masked_share:.1f} % masked",
        ]
        if self.truncated:
            lines.append(f"truncated      {self.truncated:,} dialogues longer than max_length {self.max_length:,}")
        if self.untrainable:
            lines.append(f"dropped        {self.untrainable:,} dialogues with no reply left inside max_length")
        if self.special_text:
            lines.append(f"note           {self.special_text:,} dialogues spell out a StarChat token in their text; "
                         "it is tokenized as that token, as in chat")
        if self.packed:
            lines.append(f"packing        {self.sequences:,} sequences of up to {self.max_length:,} tokens, "
                         f"{100 * self.fill:.1f} % full")
        else:
            lines.append(f"packing        off: {self.sequences:,} sequences, one dialogue each")
        if self.packed:
            lines.append(f"padding waste  {100 * self.waste_packed:.1f} % in batches of {batch_size} "
                         f"({100 * self.waste_unpacked:.1f} % without packing)")
        else:
            lines.append(f"padding waste  {100 * self.waste_unpacked:.1f} % in batches of {batch_size}")
        return lines


@dataclass
class Encoded:
    """A split's dialogues as training examples, before packing, with their statistics."""

    examples: list[Example]
    origins: list[str]
    stats: DataStats


def encode_split(tokenizer, dialogues: Dialogues, max_length: int) -> Encoded:
    stats = DataStats(max_length=max_length)
    examples, origins = [], []
    encoded = encode_dialogues(tokenizer, dialogues.messages, max_length)
    for messages, origin, item in zip(dialogues.messages, dialogues.origins, encoded):
        example = as_example(item)
        trained = int((example.labels != IGNORE_INDEX).sum())
        stats.truncated += item["truncated"]
        if trained == 0:
            stats.untrainable += 1
            continue
        stats.special_text += any(token in m["content"] for m in messages for token in SPECIAL_TOKENS)
        stats.dialogues += 1
        stats.tokens += len(example)
        stats.trained_tokens += trained
        examples.append(example)
        origins.append(origin)
    return Encoded(examples, origins, stats)


def _shuffled_waste(lengths: list[int], batch_size: int) -> float:
    """Padding share of batches drawn in random order, as the Trainer's sampler draws them."""
    import random

    lengths = list(lengths)
    random.Random(0).shuffle(lengths)
    return padding_waste(lengths, batch_size)


def build_dataset(encoded: Encoded, *, packing: bool, batch_size: int) -> ExampleDataset:
    """The rows the Trainer samples: packed (default) or one dialogue each. Fills in the layout stats."""
    stats = encoded.stats
    stats.waste_unpacked = _shuffled_waste([len(e) for e in encoded.examples], batch_size)
    rows = pack(encoded.examples, stats.max_length) if packing else list(encoded.examples)
    stats.packed = packing
    stats.sequences = len(rows)
    stats.waste_packed = _shuffled_waste([len(r) for r in rows], batch_size) if packing else stats.waste_unpacked
    return ExampleDataset(rows)
