"""The CPU speed options on the StarCoderBase-1B shape: bf16 and int8 weights against fp32, --compile against eager.

    flock /tmp/bench-1b.lock python bench/run.py scale      # with the other scale benches, in one table

Each variant loads in a process of its own: one 1B model in memory at a time, and each its own peak RSS.
Tokens/s is ``Engine.stream``'s own figure (first token to last, greedy, a fixed number of new tokens).
Greedy agreement is, per prompt, the share of fp32's reply tokens that the variant reproduces before its first
different token. The random-weight 1B model says little about it (its logits are nearly flat, so the smallest
change flips a token), so the trained demo model is asked too, when it is built: its own write, explain, fix,
complete and test requests, longer replies.

Knobs (environment): SCALE_OPTIONS_TOKENS (timed new tokens, default 64), SCALE_OPTIONS_PROMPTS (agreement
prompts, default 3), SCALE_OPTIONS_AGREE_TOKENS (tokens per agreement reply, default 32),
SCALE_OPTIONS_DEMO_PROMPTS (demo model requests, default 30, 128 tokens each), SCALE_OPTIONS_COMPILE_1B=0 to skip
compiling the 1B model (a few minutes).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import Row

AREA = "scale"
HERE = Path(__file__).resolve().parent
TOKENS = int(os.environ.get("SCALE_OPTIONS_TOKENS", "64"))
PROMPTS = int(os.environ.get("SCALE_OPTIONS_PROMPTS", "3"))
AGREE_TOKENS = int(os.environ.get("SCALE_OPTIONS_AGREE_TOKENS", "32"))
DEMO_PROMPTS = int(os.environ.get("SCALE_OPTIONS_DEMO_PROMPTS", "30"))
DEMO_AGREE_TOKENS = 128
COMPILE_1B = os.environ.get("SCALE_OPTIONS_COMPILE_1B", "1") != "0"
SPEEDUP_GOAL = 1.8
READ_SHARE_GOAL = 0.60
COMPILE_DEFAULT_BAR = 1.2

BENCH_QUESTIONS = (
    "Write a Python function that returns the n-th Fibonacci number.",
    "Review this code and say what is wrong with it: def add(a, b): return a - b",
    "Explain what a binary search does, step by step.",
    "Rewrite this loop as a list comprehension: out = []\nfor x in xs:\n    out.append(x * 2)",
)


# -- in the worker process ----------------------------------------------------------------------------------


def demo_questions(count: int) -> list[str]:
    """The first user message of the demo model's own dialogues, each kind in turn."""
    import random

    from starchat_tui.demo.corpus import DialogueWriter
    from starchat_tui.demo.tasks import Task

    rng = random.Random(1)
    kinds = ("write", "explain", "fix", "complete", "tests")
    return [getattr(DialogueWriter(Task.sample(rng), rng), kinds[i % len(kinds)])()[0][0]["content"] for i in range(count)]


def measure(spec: dict) -> dict:
    """Load one variant, answer the agreement prompts, then time a fixed-length greedy reply."""
    import torch
    from scale_model import peak_rss_bytes

    from starchat_tui import Conversation
    from starchat_tui.engine import load_engine

    started = time.perf_counter()
    engine = load_engine(spec["path"], device="cpu", dtype=spec.get("dtype", "auto"), quantize=spec.get("quantize"),
                         compile=spec.get("compile", False))
    load_s = time.perf_counter() - started
    options: dict = {"temperature": 0}
    if spec.get("suppress"):
        from scale_model import ascii_only

        options.update(ascii_only(engine.tokenizer, engine.model.config.vocab_size))

    def answer(question: str, tokens: int, fixed_length: bool) -> str:
        engine.reset_cache()
        conversation = Conversation()
        conversation.add("user", question)
        length = {"min_new_tokens": tokens} if fixed_length else {}
        for _ in engine.stream(conversation, **options, max_new_tokens=tokens, **length):
            pass
        return conversation.messages[-1]["content"]

    first_started = time.perf_counter()
    replies = [answer(q, spec.get("agree_tokens", AGREE_TOKENS), spec.get("suppress", False)) for q in spec["questions"]]
    first_s = time.perf_counter() - first_started  # with --compile, this holds the compile
    rates = []
    for _ in range(spec.get("repeats", 2)):
        answer(spec["questions"][0], TOKENS, True)
        rates.append(engine.stats.tokens_per_s)
    return {
        "load_s": load_s,
        "first_s": first_s,
        "tok_s": statistics.median(rates),
        "ids": [engine.tokenizer.encode(reply, add_special_tokens=False) for reply in replies],
        "peak_rss_gb": peak_rss_bytes() / 1e9,
        "threads": torch.get_num_threads(),
    }


# -- in the bench process -------------------------------------------------------------------------------------


def in_fresh_process(spec: dict) -> dict:
    result = subprocess.run([sys.executable, __file__, json.dumps(spec)], capture_output=True, text=True, cwd=HERE)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {result.returncode}: {last[:160]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def agreement(reference: list[list[int]], other: list[list[int]]) -> tuple[float, int]:
    """Mean share of the reference tokens reproduced before the first difference, and how many replies match whole."""
    shares, whole = [], 0
    for ref, ids in zip(reference, other):
        same = 0
        for a, b in zip(ref, ids):
            if a != b:
                break
            same += 1
        shares.append(same / max(len(ref), 1))
        whole += ref == ids
    return statistics.mean(shares), whole


def described(run: dict) -> str:
    return (f"{run['tok_s']:.2f} tok/s (load {run['load_s']:.0f} s, peak RSS {run['peak_rss_gb']:.1f} GB, "
            f"{run['threads']} thread(s))")


def weight_rows(model_path: str, read_gbs: float) -> list[Row]:
    from scale_model import weight_bytes

    questions = list(BENCH_QUESTIONS[:PROMPTS])
    base = {"path": model_path, "questions": questions, "suppress": True}
    runs = {
        "fp32": in_fresh_process({**base, "dtype": "float32"}),
        "bf16": in_fresh_process({**base, "dtype": "bfloat16"}),
        "int8": in_fresh_process({**base, "quantize": "int8"}),
    }
    rows = []
    failed = {name: run["error"] for name, run in runs.items() if "error" in run}
    for name, error in failed.items():
        rows.append(Row(AREA, f"1B shape, {name} decode", f"failed: {error}", "-", None))
    if "fp32" in failed:
        return rows
    fp32 = runs["fp32"]
    rows.append(Row(AREA, "1B shape, fp32 decode (Engine.stream, greedy)", described(fp32), "-", None))
    speedups = {name: runs[name]["tok_s"] / fp32["tok_s"] for name in ("bf16", "int8") if name not in failed}
    fastest = max(speedups, key=lambda name: speedups[name], default=None)
    for name, speedup in speedups.items():
        rows.append(Row(AREA, f"1B shape, {name} decode vs fp32", f"{described(runs[name])} = {speedup:.2f}x",
                        f">= {SPEEDUP_GOAL}x (fastest option)", speedup >= SPEEDUP_GOAL if name == fastest else None))
    if fastest is not None:
        ceiling = read_gbs * 1e9 / weight_bytes(4)
        share = runs[fastest]["tok_s"] / ceiling
        rows.append(Row(AREA, f"1B shape, {fastest} tok/s as a share of the fp32 read ceiling",
                        f"{runs[fastest]['tok_s']:.2f} / {ceiling:.2f} tok/s (read {read_gbs:.1f} GB/s / "
                        f"{weight_bytes(4) / 1e9:.2f} GB) = {share:.0%}", f">= {READ_SHARE_GOAL:.0%}", share >= READ_SHARE_GOAL))
    for name in speedups:
        share, whole = agreement(fp32["ids"], runs[name]["ids"])
        rows.append(Row(AREA, f"1B shape (random weights), {name} greedy agreement with fp32",
                        f"{share:.0%} of tokens before the first difference; {whole}/{len(questions)} replies identical "
                        f"({AGREE_TOKENS} tokens each)", "reported", None))
    return rows


def demo_agreement_rows() -> list[Row]:
    from starchat_tui.demo import demo_folder

    folder = demo_folder()
    if not (folder / "config.json").exists():
        return [Row(AREA, "demo model, bf16 / int8 greedy agreement with fp32",
                    "not measured: the demo model is not built (starchat-tui demo --build-only)", "reported", None)]
    base = {"path": str(folder), "questions": demo_questions(DEMO_PROMPTS), "agree_tokens": DEMO_AGREE_TOKENS, "repeats": 1}
    fp32 = in_fresh_process({**base, "dtype": "float32"})
    rows = []
    for name, extra in (("bf16", {"dtype": "bfloat16"}), ("int8", {"quantize": "int8"})):
        other = in_fresh_process({**base, **extra})
        if "error" in fp32 or "error" in other:
            result = f"failed: {fp32.get('error') or other.get('error')}"
        else:
            share, whole = agreement(fp32["ids"], other["ids"])
            result = (f"{share:.0%} of tokens before the first difference; {whole}/{len(base['questions'])} replies "
                      f"identical (up to {DEMO_AGREE_TOKENS} tokens each)")
        rows.append(Row(AREA, f"demo model (trained), {name} greedy agreement with fp32", result, "reported", None))
    return rows


def compile_row(label: str, spec: dict) -> Row:
    eager = in_fresh_process(spec)
    compiled = in_fresh_process({**spec, "compile": True})
    if "error" in eager or "error" in compiled:
        return Row(AREA, f"{label}: --compile vs eager", f"failed: {eager.get('error') or compiled.get('error')}", "-", None)
    ratio = compiled["tok_s"] / eager["tok_s"]
    same = "same" if compiled["ids"] == eager["ids"] else "DIFFERENT"
    verdict = "stays opt-in" if ratio < COMPILE_DEFAULT_BAR else "would pay: make it the default"
    return Row(AREA, f"{label}: --compile vs eager (fp32, greedy)",
               f"{compiled['tok_s']:.2f} vs {eager['tok_s']:.2f} tok/s = {ratio:.2f}x; first answers {compiled['first_s']:.0f} s "
               f"vs {eager['first_s']:.0f} s (compiling); {same} greedy text; {verdict}",
               f"default only where >= {COMPILE_DEFAULT_BAR}x", ratio < COMPILE_DEFAULT_BAR)


def run() -> list[Row]:
    from ceilings import read_gbs
    from scale_model import fits_in_memory, scale_model

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        from bench_engine import build_model

        tiny = build_model(Path(folder))
        rows.append(compile_row("tiny (2 layers, width 1024)", {"path": tiny, "questions": list(BENCH_QUESTIONS[:1]),
                                                                 "suppress": True}))
    fits, why = fits_in_memory(4)
    if not fits:
        rows.append(Row(AREA, "1B shape: fp32 / bf16 / int8, --compile", f"not measured: the model {why}", "-", None))
        return rows
    model_path = str(scale_model())
    read = read_gbs()
    rows.extend(weight_rows(model_path, read))
    rows.extend(demo_agreement_rows())
    if COMPILE_1B:
        rows.append(compile_row("1B shape", {"path": model_path, "questions": list(BENCH_QUESTIONS[:1]), "suppress": True,
                                             "repeats": 1}))
    else:
        rows.append(Row(AREA, "1B shape: --compile vs eager", "skipped (SCALE_OPTIONS_COMPILE_1B=0)", "-", None))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    print(json.dumps(measure(json.loads(sys.argv[1]))))
