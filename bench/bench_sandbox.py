"""Sandbox overhead: a sandboxed ``print(1)`` against bare python, median of many runs.

Runs alternate (bare, sandboxed, bare, ...) so that load from other work on the machine hits both sides
alike; the overhead is the median of the paired differences. The goal (issue 4) is at most +25 ms.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from run import Row

RUNS = 60
WARMUP = 5
GOAL_MS = 25.0


def _bare(python: str) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-c", "print(1)"], capture_output=True, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def _sandboxed(run) -> float:
    started = time.perf_counter()
    result = run("print(1)", "python", timeout=10.0)
    elapsed = time.perf_counter() - started
    if result.stdout != "1\n":
        raise RuntimeError(f"sandboxed print(1) printed {result.stdout!r} (stderr: {result.stderr[-300:]!r})")
    return elapsed


def _measure(backend: str) -> Row:
    from starchat_tui.sandbox import probe_backend, run

    os.environ["STARCHAT_TUI_SANDBOX_BACKEND"] = backend
    info = probe_backend()
    measure = f"print(1) overhead vs bare python, {backend} (median of {RUNS})"
    if info.name != backend:
        return Row("sandbox", measure, f"not available here: {info.reason}", f"<= +{GOAL_MS:g} ms", None)
    # Compare like with like: the interpreter the sandbox really runs (as root without bubblewrap or a
    # private mount view, the system python stands in, and it starts faster than a venv's).
    python = run("import sys; print(sys.executable)", "python").stdout.strip() or sys.executable
    for _ in range(WARMUP):
        _bare(python)
        _sandboxed(run)
    bare, boxed = [], []
    for _ in range(RUNS):
        bare.append(_bare(python))
        boxed.append(_sandboxed(run))
    overhead = statistics.median(b - a for a, b in zip(bare, boxed, strict=True)) * 1000
    who = f", as uid {info.uid}" if info.uid is not None else ""
    result = (
        f"{overhead:+.1f} ms ({statistics.median(boxed) * 1000:.1f} vs {statistics.median(bare) * 1000:.1f} ms "
        f"for {python}{who})"
    )
    return Row("sandbox", measure, result, f"<= +{GOAL_MS:g} ms", overhead <= GOAL_MS)


def run() -> list[Row]:
    saved = {name: os.environ.get(name) for name in ("STARCHAT_TUI_CACHE_DIR", "STARCHAT_TUI_SANDBOX_BACKEND")}
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as cache:
        os.environ["STARCHAT_TUI_CACHE_DIR"] = cache
        try:
            return [_measure("bwrap"), _measure("landlock")]
        finally:
            from starchat_tui.sandbox.workdirs import janitor

            janitor.wait()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
