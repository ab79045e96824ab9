"""The demo model's card: its README.md says plainly what the model is and what it is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CARD = """\
---
library_name: transformers
tags: [starchat-tui, starchat, demo, tiny]
---
# starchat-tui demo model ({version})

**A tiny model for trying starchat-tui, not a real assistant.** It was built on this machine by
`starchat-tui demo` in {minutes}, with no network and no GPU: {parameters:,} parameters, trained
for {train_steps:,} steps on {dialogues:,} templated coding dialogues.

## What it knows

Small Python functions from a few dozen templates: sums, counts, filters, powers, string checks and
the like. Ask it in the words of its training data and it usually answers well:

    Write a Python function `count_above(nums)` that returns how many numbers in nums are greater than 10.
    Why does this fail? (followed by a short function in a code block)
    What does this code do? (followed by a short function in a code block)

Anything else, from a question about another language to a request for a web server, is beyond it:
expect a confident answer about one of its templates. For real answers run starchat-tui with a real
chat model, for example `starchat-tui -m HuggingFaceH4/starchat-beta`.

## How it was made

- **Corpus.** {dialogues:,} dialogues written from templates ({kinds}). Each function comes from a
  family with a reference implementation; every one of the {code_blocks:,} code blocks was run while
  the corpus was written: functions must pass their asserts, the buggy code in "fix this" dialogues
  must fail them.
- **Tokenizer.** Byte-level BPE with {vocab:,} tokens trained on the corpus, with the StarChat special
  tokens `<|system|>`, `<|user|>`, `<|assistant|>` and `<|end|>`.
- **Model.** GPTBigCode (the StarCoder architecture), {n_layer} layers, {n_embd} wide, {n_head} heads,
  multi-query attention, {n_positions} positions, trained from scratch with starchat-tui's own training
  package (`starchat_tui.training`): only the assistant replies are trained, dialogues are packed
  without attending to each other. {epochs:g} epochs, learning rate {learning_rate:g}, batch {batch_size},
  seed {seed}.
- **Deterministic.** The same starchat-tui version and seed give the same corpus and held-out split
  everywhere, and the same weights on the same kind of CPU (training uses one thread for that reason;
  fingerprint `{fingerprint}`).

## Evaluation

pass@1 on {heldout} held-out tasks: **{score}** ({eval_note}).

The held-out tasks are combinations of function name, parameter names and constants that appear
nowhere in the training data, in any form; they are requests to write a function, to complete a
docstring or to fix a bug. They are in `data/heldout.jsonl` in the HumanEval format; measure again with

    starchat-tui eval --model {path} --tasks {path}/data/heldout.jsonl

The training dialogues are in `data/train.jsonl`.
"""


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    return f"{seconds / 60:.1f} minutes"


def write_card(folder: Path, metadata: dict[str, Any], kinds: dict[str, int]) -> Path:
    """Write README.md into ``folder`` from the build's metadata."""
    config = metadata["config"]
    score = metadata.get("heldout_pass_at_1")
    text = CARD.format(
        version=metadata["version"], minutes=_minutes(metadata["seconds"]), parameters=metadata["parameters"],
        train_steps=metadata["train_steps"], dialogues=metadata["dialogues"], code_blocks=metadata["code_blocks"],
        kinds=", ".join(f"{count:,} {kind}" for kind, count in kinds.items()), vocab=metadata["vocab"],
        fingerprint=metadata.get("fingerprint", "?"), heldout=metadata["heldout_tasks"],
        score=f"{100 * score:.1f}%" if score is not None else "not measured", eval_note=metadata["eval_note"],
        path=folder, **{k: config[k] for k in ("n_layer", "n_embd", "n_head", "n_positions", "epochs",
                                                "learning_rate", "batch_size", "seed")},
    )
    target = folder / "README.md"
    target.write_text(text, encoding="utf-8")
    return target
