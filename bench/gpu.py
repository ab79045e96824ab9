"""GPU bench: the StarCoder-15.5B shape with random bf16 weights on one GPU, in under 5 minutes.

    python bench/gpu.py

It prints decode tok/s through Engine.stream and bare ``generate``, each as a share of the GPU's memory
bandwidth (looked up from the device name, or measured with a big copy), and the TTFT curve with cache
reuse and with a full re-prefill. The weights are made on the meta device and then materialized straight
on the GPU in bf16, so that no 62 GB fp32 copy ever exists in CPU memory. Without CUDA it refuses with one
line and exit code 2.

``--device cpu --tiny`` (not in --help) runs the same code on a tiny shape, so that the test suite can run
it for real on a machine with no GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from run import Row, print_table  # noqa: E402  (bench modules import each other from this folder)

AREA = "gpu"
NO_CUDA = 2  # exit code: nothing to measure on this machine

# bigcode/starcoder's config.json: 40 layers, width 6144, 48 heads, multi-query attention, 8192 positions.
SHAPE_15B = {"n_layer": 40, "n_embd": 6144, "n_head": 48, "n_positions": 8192, "vocab_size": 49152, "multi_query": True}
SHAPE_TINY = {"n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 1024, "vocab_size": 320, "multi_query": True}

# Peak HBM bandwidth in GB/s by device name, from the vendors' data sheets. The first match wins, so the
# more specific names come first.
HBM_GBS = [
    (("H100", "PCIE"), 2000),
    (("H100",), 3350),
    (("H200",), 4800),
    (("A100", "80GB", "PCIE"), 1935),
    (("A100", "80GB"), 2039),
    (("A100",), 1555),
    (("L40S",), 864),
    (("A10G",), 600),
]


def datasheet_gbs(device_name: str) -> float | None:
    upper = device_name.upper()
    for words, gbs in HBM_GBS:
        if all(word in upper for word in words):
            return gbs
    return None


def copy_gbs(device, size_bytes: int, repeats: int = 5) -> float:
    """Bytes read plus bytes written a second by a big tensor copy: the bandwidth a kernel really gets."""
    import torch

    source = torch.empty(size_bytes // 2, dtype=torch.bfloat16, device=device)
    target = torch.empty_like(source)
    target.copy_(source)  # first touch
    times = []
    for _ in range(repeats):
        if source.is_cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        target.copy_(source)
        if source.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return 2 * size_bytes / min(times) / 1e9


def memory_ceiling(device, tiny: bool) -> tuple[float, str]:
    """GB/s and where the figure comes from."""
    import torch

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        listed = datasheet_gbs(name)
        if listed:
            return listed, f"{name}, data sheet"
        return copy_gbs(device, 4 * 2**30), f"{name}, measured with a 4 GiB copy"
    return copy_gbs(device, 64 * 2**20 if tiny else 2 * 2**30), f"{device}, measured with a copy"


def build_model(shape: dict, device):
    """A GPTBigCode of ``shape`` with random bf16 weights, made on ``device`` directly."""
    import torch
    from transformers import GenerationConfig, GPTBigCodeConfig, GPTBigCodeForCausalLM

    config = GPTBigCodeConfig(**shape, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    with torch.device("meta"):
        model = GPTBigCodeForCausalLM(config).to(torch.bfloat16)
    model.to_empty(device=device)
    # to_empty gives the tied lm_head its own uninitialised tensor; tie it back to the embedding.
    model.lm_head.weight = model.transformer.wte.weight
    # Buffers are left uninitialised too: GPTBigCode's one is a causal mask (unused by sdpa, kept correct).
    mask = model.transformer.bias
    mask.copy_(torch.tril(torch.ones(mask.shape, dtype=torch.bool)))
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, config.initializer_range, generator=generator)
            elif name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name.endswith("ln_f.weight"):
                parameter.fill_(1.0)
            else:
                parameter.zero_()
    model.generation_config = GenerationConfig(bos_token_id=0, eos_token_id=0, pad_token_id=0, use_cache=True)
    return model.eval()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Decode and TTFT on the StarCoder-15.5B shape, random bf16 weights.")
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens decoded per rate (default 64)")
    parser.add_argument("--repeats", type=int, default=3, help="rates per figure, the median is shown (default 3)")
    parser.add_argument("--lengths", default="1024,2048,4096,8192", help="history lengths for TTFT")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/gpu.py: no CUDA GPU is visible to torch; run it on a GPU machine", file=sys.stderr)
        return NO_CUDA
    from bench_scale import decode_runners, ttft_rows
    from scale_model import bench_tokenizer, decode_weight_bytes

    from starchat_tui.engine.engine import Engine

    device = torch.device(args.device)
    shape = SHAPE_TINY if args.tiny else SHAPE_15B
    weight_bytes = decode_weight_bytes(2, shape)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if free < weight_bytes * 1.15:
            print(f"bench/gpu.py: the weights need {weight_bytes * 1.15 / 2**30:.0f} GiB and "
                  f"{torch.cuda.get_device_name(device)} has {free / 2**30:.0f} GiB free; use a bigger GPU", file=sys.stderr)
            return NO_CUDA
    ceiling, source = memory_ceiling(device, args.tiny)
    model = build_model(shape, device)
    engine = Engine(model, bench_tokenizer(), model_name="starcoder-15.5b-shape", context_limit=shape["n_positions"])
    name = "tiny shape" if args.tiny else "StarCoder-15.5B shape"
    rows = [Row(AREA, f"{name}: memory ceiling; bf16 weight bytes per token",
                f"{ceiling:.0f} GB/s ({source}); {weight_bytes / 1e9:.3g} GB = {ceiling * 1e9 / weight_bytes:.1f} tok/s",
                "-", None)]

    streamed, bare = decode_runners(engine)
    streamed(4), bare(4)  # warm-up: kernels picked, allocator grown
    stream_rates, bare_rates = [], []
    for _ in range(args.repeats):
        stream_rates.append(streamed(args.new_tokens))
        bare_rates.append(bare(args.new_tokens))
    stream, bare_rate = sorted(stream_rates)[len(stream_rates) // 2], sorted(bare_rates)[len(bare_rates) // 2]
    rows += [
        Row(AREA, f"decode bf16: Engine.stream vs bare generate ({args.new_tokens} tokens, median of {args.repeats})",
            f"{stream:.1f} vs {bare_rate:.1f} tok/s = {stream / bare_rate:.2f}x", ">= 0.97x", stream / bare_rate >= 0.97),
        Row(AREA, "decode bf16 as a share of the memory ceiling: Engine.stream; bare generate",
            f"{stream * weight_bytes / (ceiling * 1e9):.0%}; {bare_rate * weight_bytes / (ceiling * 1e9):.0%}", "-", None),
    ]
    lengths = [int(part) for part in args.lengths.split(",") if part.strip()]
    if args.tiny:
        lengths = [length for length in (128, 256) if length < shape["n_positions"]]
    rows += ttft_rows(engine, lengths, area=AREA, shape=shape, goal_at_8k=False)
    rows.append(Row(AREA, "wall time of this bench", f"{time.perf_counter() - started:.0f} s", "< 300 s",
                    time.perf_counter() - started < 300))
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
