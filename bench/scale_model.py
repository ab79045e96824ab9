"""A real-size bench model: StarCoderBase-1B's shape with random weights, built once and cached.

    from scale_model import scale_model, fits_in_memory
    path = scale_model()          # builds on first use (about a minute), then reuses the folder

Only benches use it, never the test suite: it is 4.6 GB in fp32. Its weights are random, so what it says
means nothing; what it costs per token is what a trained model of this shape costs. Its tokenizer is the
bench's byte tokenizer (one token per byte, StarChat's special tokens), so replies re-tokenize to the ids
that were generated and the KV cache is reused across turns as with a trained model, once the ids that
are not whole ASCII characters are suppressed (``ascii_only``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

# StarCoderBase-1B (bigcode/starcoderbase-1b config.json): 24 layers, width 2048, 16 heads, multi-query
# attention, 8192 positions, a 49,152-entry vocabulary. 1.14 billion parameters.
SHAPE = {"n_layer": 24, "n_embd": 2048, "n_head": 16, "n_positions": 8192, "vocab_size": 49152, "multi_query": True}
NAME = "starcoderbase-1b-shape"
VERSION = 1  # bump when SHAPE or the tokenizer changes, so the cached folder is rebuilt


def cache_folder() -> Path:
    from starchat_tui.config import cache_dir

    return cache_dir() / "bench" / NAME


def parameter_count() -> int:
    d, layers, vocab, positions = SHAPE["n_embd"], SHAPE["n_layer"], SHAPE["vocab_size"], SHAPE["n_positions"]
    head_dim = d // SHAPE["n_head"]
    attention = d * (d + 2 * head_dim) + (d + 2 * head_dim) + d * d + d  # fused q + one k, v; out projection
    mlp = d * 4 * d + 4 * d + 4 * d * d + d
    norms = 2 * 2 * d
    return layers * (attention + mlp + norms) + vocab * d + positions * d + 2 * d  # lm_head is tied to wte


def weight_bytes(bytes_per_weight: float) -> float:
    return parameter_count() * bytes_per_weight


def decode_shapes(shape: dict | None = None) -> list[tuple[int, int]]:
    """(out, in) of every matrix one decode step multiplies by, in order: per layer the fused q + one k, v
    projection, the attention output, the MLP up and down; then the lm_head, which is the tied embedding.
    The position embedding is not here: a step reads one row of it."""
    shape = shape or SHAPE
    d = shape["n_embd"]
    head_dim = d // shape["n_head"]
    kv_width = 2 * head_dim if shape.get("multi_query", True) else 2 * d
    layer = [(d + kv_width, d), (d, d), (4 * d, d), (d, 4 * d)]
    return layer * shape["n_layer"] + [(shape["vocab_size"], d)]


def decode_weight_bytes(bytes_per_weight: float, shape: dict | None = None) -> float:
    """Bytes of weights one decode step streams: every matrix of ``decode_shapes`` once."""
    return sum(rows * cols for rows, cols in decode_shapes(shape)) * bytes_per_weight


def kv_cache_bytes(tokens: int, bytes_per_value: float, shape: dict | None = None) -> float:
    """What the KV cache of ``tokens`` tokens should take: a key and a value per layer, of one head's
    width under multi-query attention (of every head's without it)."""
    shape = shape or SHAPE
    kv_heads = 1 if shape.get("multi_query", True) else shape["n_head"]
    head_dim = shape["n_embd"] // shape["n_head"]
    return 2 * shape["n_layer"] * kv_heads * head_dim * tokens * bytes_per_value


def peak_rss_bytes() -> int:
    """This process's peak resident memory since it started.

    Not getrusage's ru_maxrss: Linux carries that across exec, so a bench child forked from a parent that
    already held a model reports the parent's peak. VmHWM belongs to the new program's own memory map.
    """
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (what can be allocated without swapping), or 0 when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def fits_in_memory(bytes_per_weight: float, copies: float = 1.0) -> tuple[bool, str]:
    """Whether ``copies`` of the weights fit in free memory, with a line that says so either way."""
    need = weight_bytes(bytes_per_weight) * copies * 1.15  # activations, logits, allocator slack
    have = available_memory_bytes()
    if have and need > have:
        return False, f"needs about {need / 2**30:.1f} GiB free and this machine has {have / 2**30:.1f} GiB available"
    return True, f"needs about {need / 2**30:.1f} GiB, {have / 2**30:.1f} GiB available"


def scale_model(progress=print) -> Path:
    """The cached model folder, built first if missing or from another VERSION."""
    folder = cache_folder()
    marker = folder / "bench_model.json"
    if marker.exists() and json.loads(marker.read_text()).get("version") == VERSION:
        return folder
    ok, why = fits_in_memory(4)
    if not ok:
        raise SystemExit(f"cannot build the {NAME} bench model: it {why}")
    progress(f"building the {NAME} bench model once ({parameter_count() / 1e9:.2f}B parameters) in {folder}")
    _build(folder)
    return folder


def bench_tokenizer():
    """One token per byte, plus the StarChat special tokens and chat template (see the module's note)."""
    from starchat_tui.demo.tiny import CHAT_TEMPLATE, train_tokenizer

    tokenizer = train_tokenizer(261)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _build(folder: Path) -> None:
    import torch
    from transformers import GenerationConfig, GPTBigCodeConfig, GPTBigCodeForCausalLM

    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    torch.manual_seed(0)
    tokenizer = bench_tokenizer()
    config = GPTBigCodeConfig(**SHAPE, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    model = GPTBigCodeForCausalLM(config).eval()
    model.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=0, pad_token_id=0, use_cache=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "bench_model.json").write_text(json.dumps({"version": VERSION, "shape": SHAPE}))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)


def ascii_only(tokenizer, vocab_size: int = SHAPE["vocab_size"]) -> dict:
    """Generation options that keep the random model to ids that decode to whole ASCII characters: the
    tokenizer's broken bytes, and every id past the tokenizer's end (the model's vocabulary is far larger)."""
    broken = [i for i in range(len(tokenizer)) if "\ufffd" in tokenizer.decode([i])]
    return {"suppress_tokens": broken + list(range(len(tokenizer), vocab_size))}


if __name__ == "__main__":
    print(scale_model())
