"""Prompt-lookup decoding (engine/lookup.py) against plain decoding, greedy, side by side in one run.

- the demo model's own fix-the-bug tasks (its held-out tasks whose question holds the buggy code): tok/s
  with lookup as the engine picks it, and with other draft lengths, and whether the text is identical;
- the cost where the answer copies nothing (the demo model's write-a-function tasks, lookup forced on);
- a review of a ~150-line file on the StarCoderBase-1B shape (random weights, so it copies nothing either:
  the row says what a step costs at that size), and what checking a draft costs there against a one-token step.

tok/s here is new tokens (counted from the ids) over the whole time of each stream, prefill included, so a
burst of accepted draft tokens cannot inflate it; "tokens a pass" is new tokens over the model's forward passes.

Knobs: BENCH_LOOKUP_DRAFTS (draft lengths to try on the demo model, default "3,10,20"), BENCH_LOOKUP_DEMO=0 and
BENCH_LOOKUP_1B=0 skip the demo and the 1B rows, BENCH_LOOKUP_LINES (file lines, default 150) and
BENCH_LOOKUP_NEW (tokens decoded, default 32).
The 1B rows take /tmp/bench-1b.lock themselves, so only one 1B run happens at a time.
"""

from __future__ import annotations

import fcntl
import json
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

from run import Row

AREA = "lookup"
GOAL = 2.0
LOCK = "/tmp/bench-1b.lock"


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


class PassCounter:
    """Counts the model's forward passes: a lookup step checks a whole draft in one."""

    def __init__(self, model) -> None:
        self.passes = 0
        model.register_forward_hook(self._count)

    def _count(self, *args) -> None:
        self.passes += 1


def answer_all(engine, counter: PassCounter, questions: list[str], **options) -> tuple[list[str], float, int, int]:
    """Greedy answers to each question in a fresh conversation: texts, seconds, new tokens, forward passes."""
    from starchat_tui import Conversation

    texts, seconds, tokens = [], 0.0, 0
    before = counter.passes
    for question in questions:
        conversation = Conversation()
        conversation.add("user", question)
        started = time.perf_counter()
        texts.append("".join(engine.stream(conversation, temperature=0, **options)))
        seconds += time.perf_counter() - started
        tokens += engine.stats.new_tokens
    return texts, seconds, tokens, counter.passes - before


def demo_rows() -> list[Row]:
    from starchat_tui.demo import resolve_model
    from starchat_tui.engine import load_engine
    from starchat_tui.engine.lookup import DRAFT_TOKENS, OPTION

    folder = Path(resolve_model("demo"))
    tasks = [json.loads(line) for line in (folder / "data" / "heldout.jsonl").read_text().splitlines()]
    fixes = [t["instruction"] for t in tasks if t.get("instruction") and "```" in t["instruction"]]
    writes = [t["instruction"] for t in tasks if t.get("instruction") and "```" not in t["instruction"]]
    engine = load_engine(str(folder))
    counter = PassCounter(engine.model)
    limit = {"max_new_tokens": 300}
    answer_all(engine, counter, fixes[:3], **limit)  # warm-up
    drafts = sorted({int(n) for n in os.environ.get("BENCH_LOOKUP_DRAFTS", "3,10,20").split(",")} | {DRAFT_TOKENS})
    rows = []
    plain, plain_s, plain_tokens, plain_passes = answer_all(engine, counter, fixes, **limit, **{OPTION: 0})
    plain_rate = plain_tokens / plain_s
    for draft in drafts:
        texts, seconds, tokens, passes = answer_all(engine, counter, fixes, **limit, **{OPTION: draft})
        speedup = (tokens / seconds) / plain_rate
        default = " (the default)" if draft == DRAFT_TOKENS else ""
        rows.append(Row(
            AREA, f"demo model, {len(fixes)} fix-the-bug tasks: lookup drafting {draft}{default} vs plain",
            f"{tokens / seconds:.0f} vs {plain_rate:.0f} tok/s = {speedup:.2f}x; {tokens / passes:.2f} vs "
            f"{plain_tokens / plain_passes:.2f} tokens a pass; text identical: {texts == plain} ({load()})",
            ">= 2x, identical" if default else "-", (speedup >= GOAL and texts == plain) if default else None,
        ))
    plain, plain_s, plain_tokens, _ = answer_all(engine, counter, writes, **limit, **{OPTION: 0})
    forced, forced_s, forced_tokens, passes = answer_all(engine, counter, writes, **limit, **{OPTION: DRAFT_TOKENS})
    rows.append(Row(
        AREA, f"demo model, {len(writes)} write tasks (nothing to copy), lookup forced on vs plain",
        f"{forced_tokens / forced_s:.0f} vs {plain_tokens / plain_s:.0f} tok/s = "
        f"{(forced_tokens / forced_s) / (plain_tokens / plain_s):.2f}x; {forced_tokens / passes:.2f} tokens a pass; "
        f"text identical: {forced == plain} ({load()})",
        "reported (off by default there)", None,
    ))
    return rows


def review_file(lines: int) -> str:
    """A plausible Python module of ``lines`` lines, short ones: the bench tokenizer spends a token a byte."""
    body = []
    for index in range(lines // 3):
        body += [f"def f{index}(x):", f"    return x + {index}", ""]
    return "\n".join(body[:lines])


@contextmanager
def shared_1b_lock():
    with open(LOCK, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def step_seconds(model, context: int, fed: int, repeats: int = 3) -> float:
    """Median seconds of one forward pass of ``fed`` tokens after ``context`` cached ones."""
    import torch
    from transformers import DynamicCache

    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        model(torch.randint(0, 200, (1, context)), past_key_values=cache, use_cache=True)
        times = []
        for _ in range(repeats + 1):
            started = time.perf_counter()
            model(torch.randint(0, 200, (1, fed)), past_key_values=cache, use_cache=True)
            times.append(time.perf_counter() - started)
            cache.crop(-fed)
    return statistics.median(times[1:])


def scale_rows() -> list[Row]:
    from scale_model import NAME, ascii_only, fits_in_memory, scale_model

    from starchat_tui.engine import load_engine
    from starchat_tui.engine.lookup import DRAFT_TOKENS, OPTION

    ok, why = fits_in_memory(4)
    if not ok:
        return [Row(AREA, f"{NAME}: review of a file, lookup vs plain", f"not measurable here: it {why}", "-", None)]
    lines = int(os.environ.get("BENCH_LOOKUP_LINES", "150"))
    new = int(os.environ.get("BENCH_LOOKUP_NEW", "32"))
    question = f"Review this file:\n\n```python\n{review_file(lines)}\n```"
    with shared_1b_lock():
        engine = load_engine(str(scale_model()), dtype="float32")
        counter = PassCounter(engine.model)
        options = {"max_new_tokens": new, **ascii_only(engine.tokenizer)}
        plain, plain_s, plain_tokens, _ = answer_all(engine, counter, [question], **options, **{OPTION: 0})
        prompt, plain_decode = engine.stats.prompt_tokens, engine.stats.tokens_per_s
        looked, looked_s, looked_tokens, passes = answer_all(engine, counter, [question], **options)
        looked_decode = engine.stats.tokens_per_s
        steps = {fed: step_seconds(engine.model, 512, fed) for fed in (1, 2, 4, DRAFT_TOKENS + 1)}
    costs = ", ".join(f"{fed} tokens {1000 * seconds:.0f} ms ({seconds / steps[1]:.1f}x)" for fed, seconds in steps.items())
    return [
        Row(AREA, f"{NAME} fp32, review of a {lines}-line file ({prompt} tokens), {new} new: lookup vs plain",
            f"decode {looked_decode:.2f} vs {plain_decode:.2f} tok/s = {looked_decode / plain_decode:.2f}x; with the "
            f"prefill {looked_tokens / looked_s:.2f} vs {plain_tokens / plain_s:.2f} tok/s; {looked_tokens / passes:.2f} "
            f"tokens a pass (random weights: it copies only its own repeats); text identical: {looked == plain} ({load()})",
            "reported", None),
        Row(AREA, f"{NAME} fp32, one forward pass after 512 cached tokens, by tokens fed (a draft of n checks n+1)",
            f"{costs} ({load()})", "reported", None),
    ]


def run() -> list[Row]:
    rows = demo_rows() if os.environ.get("BENCH_LOOKUP_DEMO", "1") != "0" else []
    if os.environ.get("BENCH_LOOKUP_1B", "1") != "0":
        rows += scale_rows()
    return rows
