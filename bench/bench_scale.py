"""Figures on a real-size model: StarCoderBase-1B's shape with random weights (see scale_model.py).

    flock /tmp/bench-1b.lock python bench/run.py scale

Run it under that lock: it loads 4.5 GB of weights several times and streams them for minutes, which
would skew any other run of the kind on a 2-core machine. Knobs, to shorten it while developing:
SCALE_LENGTHS (history lengths for TTFT, default 1024,2048,4096,8192), SCALE_NEW_TOKENS (decoded per
rate, default 32), SCALE_REPEATS (rates per figure, default 3), SCALE_THREADS (torch thread counts the
ceilings and decode are measured at, default 1 and every core). The full run takes about 15 minutes,
most of it re-prefilling 8k tokens.

Every ceiling and rate is measured in this one run, at the same thread counts: a rate at 1 thread
against a ceiling at 2 says nothing. "Weight bytes per token" are the matrices a decode step multiplies
by (scale_model.decode_weight_bytes), 4.48 GB in fp32.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import Row

AREA = "scale"
HERE = Path(__file__).resolve().parent
PROMPT = "Write a long story about sorting algorithms."


def env_ints(name: str, default: str) -> list[int]:
    return [int(part) for part in os.environ.get(name, default).split(",") if part.strip()]


def thread_counts() -> list[int]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return sorted(set(env_ints("SCALE_THREADS", f"1,{cores}")))


def load_figures(model_path: Path, dtype: str) -> dict:
    """Load time and memory of one dtype, in a fresh process so that each starts from nothing.

    The memory is read after a forward pass: safetensors weights are mapped, not read, at load time, so
    the resident size right after loading counts only the pages touched so far."""
    code = (
        "import json, sys, time\n"
        "from starchat_tui import Conversation, load_engine\n"
        "started = time.perf_counter()\n"
        f"engine = load_engine({str(model_path)!r}, dtype={dtype!r})\n"
        "load_s = time.perf_counter() - started\n"
        "conversation = Conversation()\n"
        "conversation.add('user', 'hello')\n"
        "for _ in engine.stream(conversation, temperature=0, max_new_tokens=2, min_new_tokens=2): pass\n"
        "rss = [int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmRSS:')][0]\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "from scale_model import peak_rss_bytes\n"
        "peak = peak_rss_bytes()\n"
        "print(json.dumps({'load_s': load_s, 'rss': rss, 'peak_rss': peak}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:160]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_rows(model_path: Path) -> list[Row]:
    from scale_model import fits_in_memory

    rows = []
    for dtype, width in (("float32", 4), ("bfloat16", 2)):
        # Converting to bf16 holds the fp32 file's pages and the bf16 copy at once.
        fits, why = fits_in_memory(width, copies=1.0 if width == 4 else 1.5)
        if not fits:
            rows.append(Row(AREA, f"load {dtype}", f"skipped: the model {why}", "-", None))
            continue
        figures = load_figures(model_path, dtype)
        if "error" in figures:
            rows.append(Row(AREA, f"load {dtype}", f"failed: {figures['error']}", "-", None))
            continue
        rows.append(Row(
            AREA, f"load {dtype}: time, RSS after a forward pass, peak RSS (fresh process, warm page cache)",
            f"{figures['load_s']:.1f} s, {figures['rss'] / 2**30:.2f} GiB, peak {figures['peak_rss'] / 2**30:.2f} GiB",
            "-", None,
        ))
    return rows


def ceiling_rows(threads_list: list[int]) -> list[Row]:
    """The ceilings a decode rate is not compared with here (one square matrix, bf16), for the record."""
    from ceilings import decode_matvec_gbs, matvec_gbs, torch_threads
    from scale_model import decode_shapes, decode_weight_bytes

    rows = []
    for threads in threads_list:
        with torch_threads(threads):
            square, bf16 = matvec_gbs("float32"), decode_matvec_gbs(decode_shapes(), "bfloat16", repeats=5)
        rows.append(Row(
            AREA, f"ceilings, {threads} thread(s): fp32 matvec on one 2048-wide matrix; bf16 matvec on the model's shapes",
            f"{square:.1f}; {bf16:.1f} GB/s (bf16: {bf16 * 1e9 / decode_weight_bytes(2):.1f} tok/s)", "-", None,
        ))
    return rows


class TokenClock:
    """A generate streamer that only notes when each new token came, to time bare ``generate`` from the
    first token to the last, as the engine's own rate is timed (prefill is TTFT's business)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value) -> None:
        if self._prompt_seen:
            self.times.append(time.perf_counter())
        self._prompt_seen = True

    def end(self) -> None:
        pass

    def rate(self) -> float:
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def decode_runners(engine):
    """Two functions of a token count that decode that many tokens greedily on the same prompt and
    return tok/s: through Engine.stream, and through bare ``model.generate``."""
    import torch
    from scale_model import ascii_only

    from starchat_tui import Conversation

    conversation = Conversation()
    conversation.add("user", PROMPT)
    options = ascii_only(engine.tokenizer, engine.model.config.vocab_size)
    prompt = engine.renderer.render_prompt(conversation.messages)
    inputs = engine.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(engine.model.device)

    def bare(tokens: int) -> float:
        clock = TokenClock()
        with torch.inference_mode():
            engine.model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False,
                                  pad_token_id=0, streamer=clock, **options)
        return clock.rate()

    def streamed(tokens: int) -> float:
        engine.reset_cache()
        fresh = Conversation.from_messages(conversation.messages)
        for _ in engine.stream(fresh, temperature=0, max_new_tokens=tokens, min_new_tokens=tokens, **options):
            pass
        return engine.stats.tokens_per_s

    return streamed, bare


def decode_rows(engine, threads_list: list[int], new_tokens: int, repeats: int, engine_threads: int) -> list[Row]:
    """Engine.stream and bare generate at each thread count, with the read and fp32 matvec ceilings
    measured between them at the same thread count (medians of each), so that drift in the machine's
    load hits rates and ceilings alike. The goals are judged at the thread count the engine uses; the
    others are shown for comparison."""
    import torch
    from ceilings import MatvecProbe, ReadProbe
    from scale_model import decode_shapes, decode_weight_bytes

    streamed, bare = decode_runners(engine)
    read, matvec = ReadProbe(), MatvecProbe(decode_shapes(), "float32")
    weight_bytes = decode_weight_bytes(4)
    rows = []
    for threads in threads_list:
        torch.set_num_threads(threads)
        bare(4), streamed(4)  # warm-up at this thread count
        reads, matvecs, bare_rates, stream_rates = [read.gbs()], [matvec.gbs()], [], []
        for _ in range(repeats):
            bare_rates.append(bare(new_tokens))
            stream_rates.append(streamed(new_tokens))
            reads.append(read.gbs())
            matvecs.append(matvec.gbs())
        stream, bare_rate = statistics.median(stream_rates), statistics.median(bare_rates)
        read_gbs, matvec_gbs = statistics.median(reads), statistics.median(matvecs)
        of_matvec = stream * weight_bytes / (matvec_gbs * 1e9)
        judged = threads == engine_threads
        rows += [
            Row(AREA, f"ceilings, {threads} thread(s), between the decode runs: read; fp32 matvec on the model's shapes",
                f"{read_gbs:.1f}; {matvec_gbs:.1f} GB/s = {read_gbs * 1e9 / weight_bytes:.1f}; "
                f"{matvec_gbs * 1e9 / weight_bytes:.2f} tok/s", "-", None),
            Row(AREA, f"decode fp32, {threads} thread(s): Engine.stream vs bare generate "
                      f"({new_tokens} tokens, median of {repeats})",
                f"{stream:.2f} vs {bare_rate:.2f} tok/s = {stream / bare_rate:.2f}x",
                ">= 0.97x" if judged else "-", stream / bare_rate >= 0.97 if judged else None),
            Row(AREA, f"decode fp32, {threads} thread(s): Engine.stream as a share of the fp32 matvec / read ceilings",
                f"{of_matvec:.0%} / {stream * weight_bytes / (read_gbs * 1e9):.0%}",
                ">= 90% of matvec" if judged else "-", of_matvec >= 0.9 if judged else None),
        ]
    return rows


def profile_row(engine, steps: int = 6) -> Row:
    """Where a decode step's time goes, by torch.profiler: the matrix products, the rest of torch's
    operators, and what is outside any operator (Python, generate's bookkeeping is not in this loop)."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import DynamicCache

    ids = engine.tokenizer(PROMPT, return_tensors="pt").input_ids
    cache = DynamicCache(config=engine.model.config)
    with torch.inference_mode():
        logits = engine.model(input_ids=ids, past_key_values=cache, use_cache=True).logits
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            started = time.perf_counter()
            for _ in range(steps):
                token = logits[:, -1:].argmax(-1)
                logits = engine.model(input_ids=token, past_key_values=cache, use_cache=True).logits
            wall = time.perf_counter() - started
    events = prof.key_averages()
    in_ops = sum(event.self_cpu_time_total for event in events) / 1e6
    matmuls = sum(event.self_cpu_time_total for event in events if event.key in ("aten::addmm", "aten::mm")) / 1e6
    return Row(
        AREA, f"decode step under torch.profiler ({torch.get_num_threads()} thread(s), {steps} steps): "
              "matmuls; other operators; outside operators",
        f"{wall / steps * 1000:.0f} ms/step: {matmuls / wall:.1%}; {(in_ops - matmuls) / wall:.1%}; "
        f"{max(wall - in_ops, 0) / wall:.1%}", "-", None,
    )


def history_text(tokens: int) -> str:
    """About ``tokens`` tokens of code-like ASCII (the bench tokenizer has one token per byte)."""
    line = "    total = total + values[index] * weights[index]  # accumulate\n"
    return (line * (tokens // len(line) + 1))[:tokens]


def ttft_rows(engine, lengths: list[int], area: str = AREA, shape: dict | None = None, goal_at_8k: bool = True) -> list[Row]:
    """TTFT of turn N+1 with turn N in the cache, against re-prefilling turn N from an empty cache.

    The re-prefill is turn N's prompt; the reuse turn's prompt is that plus its reply and a new question
    (some 40 tokens longer), all of which it prefills. Re-prefilling turn N+1's own prompt would cost one
    more full prefill per length; this way the comparison is slightly in re-prefill's favour."""
    from scale_model import SHAPE, ascii_only, kv_cache_bytes

    from starchat_tui import Conversation

    shape = shape or SHAPE
    options = {"temperature": 0, "max_new_tokens": 8, "min_new_tokens": 8,
               **ascii_only(engine.tokenizer, engine.model.config.vocab_size)}
    rows = []
    kv_measured = 0
    for length in lengths:
        conversation = Conversation()
        # The next turn (its reply, a question, 8 new tokens) must fit the context too, or the oldest turn is
        # dropped and nothing is reused: the 8k point is a little under 8192.
        history = min(length, engine.context_limit - 128)
        conversation.add("user", "Review this code:\n" + history_text(history - 40))
        engine.reset_cache()
        for _ in engine.stream(conversation, **options):
            pass
        cold, cold_prompt = engine.stats.ttft_s, engine.stats.prompt_tokens
        conversation.add("user", "And what does it return?")
        for _ in engine.stream(conversation, **options):
            pass
        warm, cached = engine.stats.ttft_s, engine.stats.cached_tokens
        judged = goal_at_8k and length >= 8192
        rows.append(Row(
            area, f"TTFT {length / 1024:g}k history: reuse ({cached} cached) vs re-prefill ({cold_prompt} tokens)",
            f"{warm:.3f} s vs {cold:.3f} s = {cold / warm:.0f}x",
            ">= 20x" if judged else "-", cold / warm >= 20 if judged else None,
        ))
        kv_measured = cache_tensor_bytes(engine)
    held = engine.stats.prompt_tokens + engine.stats.new_tokens - 1
    value_bytes = engine.model.dtype.itemsize
    expected = kv_cache_bytes(held, value_bytes, shape)
    head_dim = shape["n_embd"] // shape["n_head"]
    rows.append(Row(
        area, f"KV cache at {held} tokens, {engine.dtype}: measured from its tensors vs the MQA formula "
              f"(2 x {shape['n_layer']} layers x 1 head x {head_dim} x tokens x {value_bytes} B)",
        f"{kv_measured / 2**20:.4g} MiB vs {expected / 2**20:.4g} MiB", "-", None,
    ))
    return rows


def cache_tensor_bytes(engine) -> int:
    """Bytes of every key and value tensor in the engine's cache. It reaches into the engine's private
    cache on purpose: the point is to count what is really allocated, not what the engine reports."""
    cache = engine._cache._cache
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))


def run() -> list[Row]:
    import torch
    from scale_model import decode_weight_bytes, fits_in_memory, scale_model

    from starchat_tui import load_engine

    # The fp32 ceiling keeps its own copy of the weights beside the model's, and a 2 GB read probe.
    fits, why = fits_in_memory(4, copies=2.5)
    if not fits:
        return [Row(AREA, "StarCoderBase-1B shape, fp32", f"skipped: the model {why}", "-", None)]
    model_path = scale_model(progress=lambda line: print(line, file=sys.stderr))
    new_tokens = env_ints("SCALE_NEW_TOKENS", "32")[0]
    repeats = env_ints("SCALE_REPEATS", "3")[0]
    lengths = env_ints("SCALE_LENGTHS", "1024,2048,4096,8192")

    threads_list = thread_counts()
    rows = ceiling_rows(threads_list)  # before the loads: their processes leave the machine unsettled
    rows.extend(load_rows(model_path))
    engine = load_engine(str(model_path), dtype="float32")
    default_threads = torch.get_num_threads()
    rows.append(Row(AREA, "fp32 decode weight bytes per token; torch threads the engine picks here",
                    f"{decode_weight_bytes(4) / 1e9:.2f} GB; {default_threads}", "-", None))
    rows.extend(decode_rows(engine, threads_list, new_tokens, repeats, default_threads))
    for threads in threads_list:
        torch.set_num_threads(threads)
        rows.append(profile_row(engine))
    torch.set_num_threads(default_threads)
    rows.extend(ttft_rows(engine, lengths))
    engine.close()
    return rows
