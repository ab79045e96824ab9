"""Engine benchmarks: streaming overhead, time to first token with cache reuse, and --help start-up."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import Row

AREA = "engine"
NEW_TOKENS = 200


def build_model(folder: Path) -> str:
    """An untrained 2-layer, 1024-wide GPTBigCode with a 4k context. It is wide rather than deep so that, as in
    real models, the weights cost more than attention over a few thousand cached tokens.

    Its tokenizer has one token per byte and no merges. An untrained model's replies then re-tokenize to the
    ids it generated (once non-ASCII bytes are suppressed, see ``ascii_only``), as a trained model's
    replies do; with merges, its random token sequences would not, and every turn would re-prefill.
    """
    from starchat_tui.demo.tiny import build_tiny_model

    return str(build_tiny_model(folder, train_steps=0, n_embd=1024, n_layer=2, n_positions=4096, vocab_size=261))


def ascii_only(tokenizer) -> dict:
    """Generation options that keep a byte-level model to whole ASCII characters."""
    broken = [i for i in range(len(tokenizer)) if "\ufffd" in tokenizer.decode([i])]
    return {"suppress_tokens": broken}


def bench_stream_vs_generate(model_path: str) -> Row:
    import torch

    from starchat_tui import Conversation, load_engine

    engine = load_engine(model_path)
    conversation = Conversation()
    conversation.add("user", "Write a long story about sorting algorithms.")
    prompt = engine.renderer.render_prompt(conversation.messages)
    inputs = engine.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    fixed = {"max_new_tokens": NEW_TOKENS, "min_new_tokens": NEW_TOKENS, "do_sample": False}

    def bare() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            engine.model.generate(**inputs, **fixed, pad_token_id=0)
        return NEW_TOKENS / (time.perf_counter() - started)

    def streamed() -> float:
        engine.reset_cache()
        fresh = Conversation.from_messages(conversation.messages)
        started = time.perf_counter()
        for _ in engine.stream(fresh, temperature=0, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS):
            pass
        return NEW_TOKENS / (time.perf_counter() - started)

    bare(), streamed()  # warm-up
    bare_rates, stream_rates = [], []
    for _ in range(5):  # interleaved, so drift in machine load hits both alike
        bare_rates.append(bare())
        stream_rates.append(streamed())
    ratio = statistics.median(stream_rates) / statistics.median(bare_rates)
    return Row(
        AREA,
        "Engine.stream tok/s vs bare generate (greedy, 200 tokens)",
        f"{statistics.median(stream_rates):.0f} vs {statistics.median(bare_rates):.0f} tok/s = {ratio:.2f}x",
        ">= 0.97x",
        ratio >= 0.97,
    )


def bench_ttft(model_path: str) -> list[Row]:
    from starchat_tui import Conversation, load_engine

    engine = load_engine(model_path)
    conversation = Conversation(system="You are a helpful coding assistant.")
    options = {"temperature": 0, **ascii_only(engine.tokenizer)}
    ttfts = []
    for turn in range(1, 7):
        conversation.add("user", f"Question {turn}: explain step {turn} of merge sort with an example.")
        reply_tokens = 480 if turn < 6 else 8
        for _ in engine.stream(conversation, max_new_tokens=reply_tokens, min_new_tokens=reply_tokens, **options):
            pass
        ttfts.append(engine.stats.ttft_s)
    history_tokens, cached = engine.stats.prompt_tokens, engine.stats.cached_tokens
    warm = engine.stats.ttft_s
    # The same turn 6 with the cache dropped: a full re-prefill of the whole history.
    colds = []
    for _ in range(3):
        del conversation.messages[-1]
        engine.reset_cache()
        for _ in engine.stream(conversation, max_new_tokens=8, min_new_tokens=8, **options):
            pass
        colds.append(engine.stats.ttft_s)
    cold = statistics.median(colds)
    speedup = cold / warm
    return [
        Row(AREA, f"TTFT turn 6 ({history_tokens}-token history, {cached} cached): reuse vs re-prefill",
            f"{warm * 1000:.1f} ms vs {cold * 1000:.1f} ms = {speedup:.1f}x faster", ">= 8x", speedup >= 8),
        Row(AREA, "TTFT turn 6 vs turn 1 (with reuse)",
            f"{warm * 1000:.1f} ms vs {ttfts[0] * 1000:.1f} ms = {warm / ttfts[0]:.2f}x", "<= 1.5x", warm / ttfts[0] <= 1.5),
    ]


def bench_help() -> Row:
    times = []
    for _ in range(7):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "starchat_tui", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    return Row(AREA, "starchat-tui --help wall time (median of 7)", f"{median * 1000:.0f} ms", "<= 300 ms", median <= 0.3)


def run() -> list[Row]:
    rows = [bench_help()]
    with tempfile.TemporaryDirectory() as folder:
        model_path = build_model(Path(folder) / "model")
        rows.append(bench_stream_vs_generate(model_path))
        rows.extend(bench_ttft(model_path))
    return rows
