"""``starchat-tui train --inspect``: see exactly what the model will be trained on, without training.

Prints the first few encoded dialogues with the masked (untrained) text set apart, dim on a terminal
and inside ``⟦ ⟧`` otherwise, then the statistics of the whole split. Loads only the tokenizer.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from ..chat.inert import make_inert
from .config import TrainConfig
from .encode import IGNORE_INDEX
from .prepare import build_dataset, encode_split
from .tokens import prepare_tokenizer
from .trainer import effective_max_length, load_split, load_tokenizer

DIM, RESET = "\x1b[2m", "\x1b[0m"
OPEN, CLOSE = "⟦", "⟧"


def runs(input_ids, labels) -> list[tuple[bool, list[int]]]:
    """Consecutive tokens grouped by whether they are trained: ``[(trained, ids), ...]``."""
    groups: list[tuple[bool, list[int]]] = []
    for token, label in zip(input_ids, labels):
        trained = label != IGNORE_INDEX
        if groups and groups[-1][0] == trained:
            groups[-1][1].append(int(token))
        else:
            groups.append((trained, [int(token)]))
    return groups


def show_example(tokenizer, example, *, color: bool) -> str:
    parts = []
    for trained, ids in runs(example.input_ids, example.labels):
        text = make_inert(tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False))
        if trained:
            parts.append(text)
        else:
            parts.append(f"{DIM}{text}{RESET}" if color else f"{OPEN}{text}{CLOSE}")
    return "".join(parts)


def inspect_data(config: TrainConfig, *, examples: int = 3, stream: TextIO | None = None) -> int:
    out = stream or sys.stdout
    color = hasattr(out, "isatty") and out.isatty() and "NO_COLOR" not in os.environ
    dialogues = load_split(config)
    tokenizer = load_tokenizer(config)
    prepare_tokenizer(tokenizer)
    max_length = effective_max_length(config)
    encoded = encode_split(tokenizer, dialogues, max_length)
    batch = int(config.training.get("per_device_train_batch_size", 8))
    build_dataset(encoded, packing=config.data.packing, batch_size=batch)

    legend = "dim" if color else f"inside {OPEN} {CLOSE}"
    print(f"{dialogues.summary()}; masked (untrained) text is shown {legend}", file=out)
    for index, example in enumerate(encoded.examples[:examples]):
        trained = int((example.labels != IGNORE_INDEX).sum())
        print(f"\n── example {index + 1} · {encoded.origins[index]} · {len(example)} tokens, {trained} trained ──",
              file=out)
        print(show_example(tokenizer, example, color=color), file=out)
    print("", file=out)
    for line in encoded.stats.lines(batch):
        print(line, file=out)
    return 0
