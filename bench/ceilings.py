"""This machine's memory ceilings for decoding, measured in the run that reports against them.

A decode step reads every weight once, so tokens per second can be no more than the bytes a second the
machine reads (``read_gbs``), and in practice no more than what its matrix-vector products stream
(``matvec_gbs``): that is the kernel a decode step spends its time in.
"""

from __future__ import annotations

import statistics
import time


def _median_seconds(work, repeats: int) -> float:
    work()  # warm-up: page faults and the allocator's first touch are not bandwidth
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def read_gbs(size_bytes: int = 2 * 10**9, repeats: int = 5) -> float:
    """GB/s of a sum over ``size_bytes`` of fp32: the machine's read bandwidth as torch sees it."""
    import torch

    data = torch.ones(size_bytes // 4, dtype=torch.float32)
    seconds = _median_seconds(lambda: data.sum(), repeats)
    return size_bytes / seconds / 1e9


def matvec_gbs(dtype: str = "float32", size_bytes: int = 10**9, width: int = 2048, repeats: int = 5) -> float:
    """GB/s of one-row products against a ``width``-wide weight matrix of ``size_bytes``, as a decode step
    runs them (``F.linear`` of one token's activations)."""
    import torch

    kind = getattr(torch, dtype)
    rows = size_bytes // (width * torch.finfo(kind).bits // 8)
    weight = torch.randn(rows, width).to(kind)
    activations = torch.randn(1, width).to(kind)
    with torch.inference_mode():
        seconds = _median_seconds(lambda: torch.nn.functional.linear(activations, weight), repeats)
    return weight.numel() * weight.element_size() / seconds / 1e9


if __name__ == "__main__":
    print(f"read {read_gbs():.1f} GB/s; fp32 matvec {matvec_gbs():.1f} GB/s; bf16 matvec {matvec_gbs('bfloat16'):.1f} GB/s")
