"""Batches of encoded dialogues as tensors: padded on the right, padding never trained.

Padding is masked by position (labels -100 wherever a row had no token), never by comparing ids with
the pad id, so a pad id that equals a real token cannot hide that token from the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

from .encode import IGNORE_INDEX
from .packing import Example


class DialogueCollator:
    """Pad :class:`~starchat_tui.training.packing.Example` rows into a batch of tensors.

    Unpacked rows get an ``attention_mask``. Packed rows get ``position_ids`` and no mask, which is how
    transformers knows where each packed dialogue starts; their padding forms one more short segment of
    its own that attends only to itself.
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, rows: Sequence[Example]) -> dict:
        import torch

        width = max(len(row) for row in rows)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        packed = rows[0].position_ids is not None
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        extra = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row)
            input_ids[i, :n] = torch.from_numpy(row.input_ids)
            labels[i, :n] = torch.from_numpy(row.labels)
            if packed:
                extra[i, :n] = torch.from_numpy(row.position_ids)
                extra[i, n:] = torch.arange(width - n)
            else:
                extra[i, :n] = 1
        batch = {"input_ids": input_ids, "labels": labels}
        batch["position_ids" if packed else "attention_mask"] = extra
        return batch


class ExampleDataset:
    """A list of examples with the ``Dataset`` protocol the Trainer samples from."""

    def __init__(self, examples: Sequence[Example]) -> None:
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> Example:
        return self.examples[index]

    @property
    def lengths(self) -> list[int]:
        return [len(e) for e in self.examples]
