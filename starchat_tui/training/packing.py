"""Packing: several whole dialogues in one training sequence, never one dialogue across two.

Dialogues are placed with best-fit decreasing (longest first, each into the fullest sequence it still
fits in), which leaves only a few percent of each sequence empty. Inside a sequence, ``position_ids``
restart at 0 for every dialogue and no ``attention_mask`` is passed: transformers reads the restarts as
sequence boundaries and builds a block-diagonal causal mask (SDPA and eager attention) or runs
FlashAttention's variable-length kernels, so no token ever attends to another dialogue. The first label
of each dialogue is masked too, so the last token of one dialogue is never trained to predict the first
token of the next.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .encode import IGNORE_INDEX


def best_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Group item indices into bins of at most ``capacity``; deterministic for the same input."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    # Free space -> bins with exactly that much room, plus the sorted distinct free-space values, so the
    # tightest bin that fits is one bisect away.
    by_room: dict[int, list[int]] = {}
    rooms: list[int] = []
    for index in order:
        size = lengths[index]
        if size > capacity:
            raise ValueError(f"item {index} has {size} tokens, more than the sequence length {capacity}")
        slot = bisect.bisect_left(rooms, size)
        if slot < len(rooms):
            room = rooms[slot]
            target = by_room[room].pop()
            if not by_room[room]:
                del by_room[room]
                rooms.pop(slot)
        else:
            room, target = capacity, len(bins)
            bins.append([])
        bins[target].append(index)
        room -= size
        if room > 0:
            if room not in by_room:
                by_room[room] = []
                bisect.insort(rooms, room)
            by_room[room].append(target)
    return bins


@dataclass
class Example:
    """One training row: token ids, labels and, for packed rows, per-dialogue position ids."""

    input_ids: np.ndarray
    labels: np.ndarray
    position_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.input_ids)


def as_example(encoded: dict) -> Example:
    return Example(np.asarray(encoded["input_ids"], dtype=np.int64), np.asarray(encoded["labels"], dtype=np.int64))


def pack(examples: Sequence[Example], capacity: int) -> list[Example]:
    """Pack dialogues into rows of at most ``capacity`` tokens with position ids restarting per dialogue."""
    rows = []
    for members in best_fit_decreasing([len(e) for e in examples], capacity):
        parts = [examples[i] for i in members]
        labels = np.concatenate([p.labels for p in parts])
        starts = np.cumsum([0] + [len(p) for p in parts[:-1]])
        labels[starts] = IGNORE_INDEX
        rows.append(
            Example(
                input_ids=np.concatenate([p.input_ids for p in parts]),
                labels=labels,
                position_ids=np.concatenate([np.arange(len(p), dtype=np.int64) for p in parts]),
            )
        )
    return rows


def padding_waste(lengths: Sequence[int], batch_size: int) -> float:
    """Share of padded positions when consecutive rows are batched and padded to the batch's longest."""
    total = padded = 0
    for start in range(0, len(lengths), batch_size):
        batch = lengths[start : start + batch_size]
        width = max(batch)
        total += width * len(batch)
        padded += width * len(batch) - sum(batch)
    return padded / total if total else 0.0
