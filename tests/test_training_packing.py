"""Packing never crosses dialogues: bins, position ids, masks, and a real model's attention."""

from __future__ import annotations

import random

import numpy as np
import pytest

from starchat_tui.training import IGNORE_INDEX, encode_dialogue
from starchat_tui.training.collator import DialogueCollator
from starchat_tui.training.packing import Example, as_example, best_fit_decreasing, pack, padding_waste


def test_best_fit_decreasing_places_every_item_once_within_capacity():
    rng = random.Random(0)
    lengths = [rng.randint(1, 300) for _ in range(500)]
    bins = best_fit_decreasing(lengths, 512)
    placed = sorted(i for b in bins for i in b)
    assert placed == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 512 for b in bins)
    # Close to the lower bound on the number of sequences.
    assert len(bins) <= -(-sum(lengths) // 512) + 2
    assert bins == best_fit_decreasing(lengths, 512)  # deterministic, so resuming sees the same rows
    with pytest.raises(ValueError, match="more than the sequence length"):
        best_fit_decreasing([10, 513], 512)


def test_packed_rows_restart_positions_and_mask_each_dialogue_start():
    a = Example(np.array([5, 6, 7]), np.array([-100, 6, 7]))
    b = Example(np.array([8, 9]), np.array([8, 9]))  # a first label that is trainable gets masked
    (row,) = pack([a, b], 8)
    assert row.input_ids.tolist() == [5, 6, 7, 8, 9]
    assert row.position_ids.tolist() == [0, 1, 2, 0, 1]
    assert row.labels.tolist() == [-100, 6, 7, -100, 9]
    assert a.labels.tolist() == [-100, 6, 7] and b.labels.tolist() == [8, 9]  # inputs untouched


def test_collator_pads_by_position_never_by_id():
    collate = DialogueCollator(pad_token_id=9)
    packed = pack([Example(np.array([1, 9, 9]), np.array([-100, 9, 9]))], 8)[0]  # 9 is real and trained here
    short = Example(np.array([4]), np.array([-100]), position_ids=np.array([0]))
    batch = collate([packed, short])
    assert batch["input_ids"].tolist() == [[1, 9, 9], [4, 9, 9]]
    assert batch["labels"].tolist() == [[-100, 9, 9], [-100, -100, -100]]
    assert batch["position_ids"].tolist() == [[0, 1, 2], [0, 0, 1]]
    assert "attention_mask" not in batch  # transformers reads the boundaries from position_ids

    plain = collate([Example(np.array([1, 2]), np.array([1, 2])), Example(np.array([3]), np.array([3]))])
    assert plain["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert plain["labels"].tolist() == [[1, 2], [3, -100]]
    assert "position_ids" not in plain
    assert DialogueCollator(0, pad_to_multiple_of=8)([short])["input_ids"].shape == (1, 8)


def test_padding_waste():
    assert padding_waste([4, 4, 2, 2], 2) == 0.0
    assert padding_waste([4, 2], 2) == pytest.approx(2 / 8)
    assert padding_waste([], 4) == 0.0


def test_packing_keeps_padding_under_five_percent_on_varied_dialogues():
    rng = random.Random(1)
    lengths = [int(rng.lognormvariate(5, 0.8)) % 1000 + 10 for _ in range(2000)]
    examples = [Example(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)) for n in lengths]
    rows = pack(examples, 1024)
    assert padding_waste([len(r) for r in rows], 4) <= 0.05
    assert padding_waste(lengths, 4) > 0.25  # what the same data wastes unpacked


def test_a_real_model_never_attends_across_packed_dialogues(random_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(random_model)
    dialogues = [
        [{"role": "user", "content": "How do I sort?"}, {"role": "assistant", "content": "Use sorted(x)."}],
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
         {"role": "assistant", "content": "Hello! def f(): pass"}],
        [{"role": "user", "content": "len?"}, {"role": "assistant", "content": "len(x) counts items."}],
    ]
    examples = [as_example(encode_dialogue(tokenizer, d)) for d in dialogues]
    for implementation in ("sdpa", "eager"):
        model = AutoModelForCausalLM.from_pretrained(random_model, attn_implementation=implementation).eval()
        model.config.use_cache = False  # as in training
        batch = DialogueCollator(tokenizer.pad_token_id)(pack(examples, 256))
        with torch.no_grad():
            packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
            total = model(**batch).loss * (batch["labels"][:, 1:] != IGNORE_INDEX).sum()
            offset, separate_total = 0, 0.0
            members = list(_members(batch, examples))
            assert len(members) == len(examples) and batch["input_ids"].shape[0] == 1
            for length, ids, labels in members:
                alone = model(input_ids=torch.tensor([ids])).logits[0]
                torch.testing.assert_close(packed[offset:offset + length], alone, atol=1e-5, rtol=1e-4)
                out = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels]))
                separate_total += out.loss * (torch.tensor(labels[1:]) != IGNORE_INDEX).sum()
                offset += length
        # Same loss as training each dialogue alone: nothing is predicted across a boundary.
        torch.testing.assert_close(total, separate_total, atol=1e-4, rtol=1e-5)


def _members(batch, examples):
    """The packed dialogues of row 0, in their order, found by their restarting position ids."""
    positions = batch["position_ids"][0].tolist()
    starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
    for start, end in zip(starts, starts[1:]):
        ids = batch["input_ids"][0, start:end].tolist()
        match = next(e for e in examples if e.input_ids.tolist() == ids)
        yield end - start, ids, match.labels.tolist()


def test_models_that_cannot_isolate_packed_dialogues_are_found(random_model):
    import torch
    from transformers import AutoModelForCausalLM

    from starchat_tui.training.trainer import isolates_packed_sequences

    assert isolates_packed_sequences(AutoModelForCausalLM.from_pretrained(random_model))
    # A model whose code builds no transformers mask (here a bare torch layer standing in for old
    # remote code) would let packed dialogues see each other; it trains unpacked instead.
    legacy = torch.nn.Linear(2, 2)
    legacy.config = type("Config", (), {"_attn_implementation": "eager"})()
    assert not isolates_packed_sequences(legacy)
    legacy.config._attn_implementation = "flash_attention_2"  # varlen kernels isolate by position ids
    assert isolates_packed_sequences(legacy)
