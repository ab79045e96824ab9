"""pass@k: the chance that at least one of k samples passes, estimated without bias from n >= k samples.

With ``c`` of ``n`` samples passing, the estimate for one task is ``1 - C(n - c, k) / C(n, k)`` (Chen et
al., 2021, "Evaluating Large Language Models Trained on Code"); the score is its mean over tasks. The
ratio of binomials is computed as a product, which stays exact in floating point where the binomials
themselves would overflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate for one task with ``c`` passing samples out of ``n``."""
    if not 0 <= c <= n:
        raise ValueError(f"passing samples c={c} must be between 0 and n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the number of samples n={n}")
    if n - c < k:
        return 1.0  # every choice of k samples includes a passing one
    estimate = 1.0
    for i in range(n - c + 1, n + 1):
        estimate *= 1.0 - k / i
    return 1.0 - estimate


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """pass@k over tasks, each given as ``(n, c)``."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    if not values:
        raise ValueError("no tasks to score")
    return sum(values) / len(values)


def default_ks(samples: int, wanted: Sequence[int] = (1, 10, 100)) -> list[int]:
    """The usual k values that ``samples`` samples per task can estimate, plus k = samples itself."""
    ks = [k for k in wanted if k <= samples]
    if samples not in ks:
        ks.append(samples)
    return ks
