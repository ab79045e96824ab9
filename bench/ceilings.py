"""This machine's memory ceilings for decoding, measured in the run that reports against them.

A decode step reads every weight once, so tokens per second can be no more than the bytes a second the
machine reads (``read_gbs``), and in practice no more than what its matrix-vector products stream
(``matvec_gbs``, ``decode_matvec_gbs``): that is the kernel a decode step spends its time in.

The probes keep their data, so a bench can measure a ceiling again between the runs it compares with
it: on a shared machine the load drifts, and a ceiling from a quiet minute flatters nothing but itself.
Thread counts matter as much: a ceiling and a rate are comparable only at the same ``torch_threads``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _median_seconds(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


class ReadProbe:
    """A sum over ``size_bytes`` of fp32: the machine's read bandwidth as torch sees it."""

    def __init__(self, size_bytes: int = 2 * 10**9) -> None:
        import torch

        self.data = torch.ones(size_bytes // 4, dtype=torch.float32)
        self.nbytes = size_bytes
        self.data.sum()  # page faults and the allocator's first touch are not bandwidth

    def gbs(self, repeats: int = 1) -> float:
        return self.nbytes / _median_seconds(self.data.sum, repeats) / 1e9


class MatvecProbe:
    """One-row products against a weight of each (out, in) in ``shapes``, in order, as a decode step runs
    them (``F.linear`` of one token's activations)."""

    def __init__(self, shapes: list[tuple[int, int]], dtype: str = "float32") -> None:
        import torch

        kind = getattr(torch, dtype)
        self.weights = [torch.randn(rows, cols).to(kind) for rows, cols in shapes]
        self.inputs = {cols: torch.randn(1, cols).to(kind) for _, cols in shapes}
        self.nbytes = sum(w.numel() * w.element_size() for w in self.weights)
        self._pass()

    def _pass(self) -> None:
        import torch

        with torch.inference_mode():
            for weight in self.weights:
                torch.nn.functional.linear(self.inputs[weight.shape[1]], weight)

    def gbs(self, repeats: int = 1) -> float:
        return self.nbytes / _median_seconds(self._pass, repeats) / 1e9


def read_gbs(size_bytes: int = 2 * 10**9, repeats: int = 5) -> float:
    return ReadProbe(size_bytes).gbs(repeats)


def matvec_gbs(dtype: str = "float32", size_bytes: int = 10**9, width: int = 2048, repeats: int = 5) -> float:
    """GB/s against one ``width``-wide weight matrix of ``size_bytes``."""
    bits = 16 if dtype in ("bfloat16", "float16") else 32
    return MatvecProbe([(size_bytes // (width * bits // 8), width)], dtype).gbs(repeats)


def decode_matvec_gbs(shapes: list[tuple[int, int]], dtype: str = "float32", repeats: int = 3) -> float:
    """GB/s of one decode step's worth of products, on a model's own shapes. Fairer than one big matrix
    either way: narrow matrices split worse across threads and pay more per call, and the whole set is
    too big for any cache."""
    return MatvecProbe(shapes, dtype).gbs(repeats)


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch threads, then put back what was set before."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


if __name__ == "__main__":
    print(f"read {read_gbs():.1f} GB/s; fp32 matvec {matvec_gbs():.1f} GB/s; bf16 matvec {matvec_gbs('bfloat16'):.1f} GB/s")
