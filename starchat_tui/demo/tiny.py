"""A tiny StarChat-style model built on the spot, for tests, benchmarks and the offline default.

It is a real GPTBigCode model with a real byte-level BPE tokenizer that carries the StarChat special
tokens, saved as a standard Hugging Face folder. With ``train_steps > 0`` it is trained for a few seconds
on a handful of templated dialogues, so it answers in short replies that end in ``<|end|>``; its answers
are not useful, and the model card says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..chat.template import CHAT_TEMPLATE, render

# Short exchanges the tiny model learns to imitate; enough for it to learn the turn structure.
DIALOGUES = [
    ("How do I sort a list in Python?", "Use sorted(items) for a new list, or items.sort() in place."),
    ("Write a function that adds two numbers.", "```python\ndef add(a, b):\n    return a + b\n```"),
    ("What does len do?", "len(x) returns the number of items in x."),
    ("Reverse a string in Python.", "```python\ndef reverse(text):\n    return text[::-1]\n```"),
    ("hello", "Hello! Ask me a coding question."),
    ("Explain this error: NameError", "A NameError means a name was used before it was defined."),
]

CORPUS_EXTRA = """\
def fibonacci(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

import os
import sys
for line in sys.stdin:
    print(line.strip())

class Stack:
    def __init__(self):
        self.items = []
    def push(self, item):
        self.items.append(item)
    def pop(self):
        return self.items.pop()

The assistant answers questions about code, explains errors and writes small functions.
"""

MODEL_CARD = """\
# starchat-tui tiny model

A GPTBigCode model with {parameters:,} parameters and a {vocab}-token tokenizer, built by starchat-tui in
seconds ({steps} training steps on {dialogues} templated dialogues).

**This is not an assistant.** It exists so that starchat-tui, its tests and its benchmarks run on a machine
with no network and no GPU. It has learned the StarChat turn format and little else: expect short, mostly
meaningless replies. For real answers run `starchat-tui -m HuggingFaceH4/starchat-beta` (or any chat model).
"""


def train_tokenizer(vocab_size: int = 1024):
    """A byte-level BPE tokenizer with StarChat's special tokens, trained on the built-in corpus.

    With ``vocab_size`` at 261 or less it learns no merges: one token per byte. It carries no chat
    template; ``build_tiny_model`` adds one when asked.
    """
    from .tokenizer import train_tokenizer as train_on

    corpus = [render([{"role": "user", "content": q}, {"role": "assistant", "content": a}]) for q, a in DIALOGUES]
    # GPT-2's word split: the tests were written against this model's answers, and it copies nothing
    tokenizer = train_on([*corpus, CORPUS_EXTRA], vocab_size, words=None)
    tokenizer.chat_template = None
    return tokenizer


def build_tiny_model(
    path: str | Path,
    *,
    chat_template: bool = True,
    seed: int = 0,
    train_steps: int = 150,
    n_embd: int = 64,
    n_layer: int = 2,
    n_positions: int = 1024,
    vocab_size: int = 1024,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Build, train briefly and save a tiny StarChat-style model at ``path``; return the folder."""
    import torch
    from transformers import GenerationConfig, GPTBigCodeConfig, GPTBigCodeForCausalLM

    report = progress or (lambda step: None)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)

    report("training the tokenizer")
    tokenizer = train_tokenizer(vocab_size)
    config = GPTBigCodeConfig(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=4,
        multi_query=True,
        # As in the released StarChat configs: eos is <|endoftext|> (0); the turn end comes from the tokenizer.
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    model = GPTBigCodeForCausalLM(config)

    if train_steps:
        report(f"training the model ({train_steps} steps)")
        train_briefly(model, tokenizer, train_steps)
    model.eval()

    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    # Like the released StarChat checkpoints, the saved config only knows eos 0: an engine that trusted
    # it would run past <|end|>, so it must take the turn end from the tokenizer.
    model.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=0, pad_token_id=0, use_cache=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    parameters = sum(p.numel() for p in model.parameters())
    (path / "README.md").write_text(
        MODEL_CARD.format(parameters=parameters, vocab=len(tokenizer), steps=train_steps, dialogues=len(DIALOGUES))
    )
    (path / "starchat_tui.json").write_text(json.dumps({"kind": "tiny", "seed": seed, "train_steps": train_steps}))
    return path


def training_dialogues() -> list[list[dict[str, str]]]:
    """Single turns, chained multi-turn dialogues, and some under a system message."""
    turns = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in DIALOGUES]
    chained = [turns[i] + turns[i + 1] for i in range(0, len(turns), 2)]
    system = [{"role": "system", "content": "You are a helpful coding assistant."}]
    return turns + chained + [system + turns[0], system + turns[3], system + chained[1]]


def train_briefly(model, tokenizer, steps: int) -> None:
    """Fit the built-in dialogues so the model learns the turn format and to end turns with <|end|>."""
    import torch

    texts = [render(dialogue, add_generation_prompt=False) for dialogue in training_dialogues()]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    model.train()
    # A model this small trains faster on one thread, and a second one only spins against a busy machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(steps):
            loss = model(**batch, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
