"""The demo model build, full size, as `starchat-tui demo` runs it on first use.

Measures the whole build (corpus with every code block checked, tokenizer, model training with the
training package, held-out evaluation in the sandbox) on this machine's CPU, and what the model reaches on
its held-out sets. Goals (issues 6 and 15): the build in at most 3 minutes on 2 CPU cores; pass@1 at least
74% on the templated tasks (no regression) and 70% on requests in everyday words, with at most 5% of those
answers not valid Python.
The machine's cores and load are printed with the rows: a busy shared machine builds slower.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from run import Row

AREA = "demo"
BUILD_GOAL_S = 180.0
TEMPLATED_GOAL = 0.74
NATURAL_GOAL = 0.70
SYNTAX_GOAL = 0.05


def _cpu_seconds() -> float:
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run() -> list[Row]:
    from starchat_tui.demo import DEMO_VERSION
    from starchat_tui.demo.build import BuildConfig, build_demo_model

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    before = _cpu_seconds()
    with tempfile.TemporaryDirectory() as folder:
        result = build_demo_model(Path(folder) / "demo", BuildConfig(), version=DEMO_VERSION)
    cpu = _cpu_seconds() - before
    scores = result.scores
    steps = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.steps.items())
    rows = [
        Row(AREA, f"build time, {cores} CPU cores (load {load:.1f} at start)", f"{result.seconds:.0f} s ({steps})",
            f"<= {BUILD_GOAL_S:.0f} s on 2 cores", result.seconds <= BUILD_GOAL_S if cores == 2 else None),
        # Wall time on a shared machine depends on the other users; CPU time is what a quiet one approaches.
        Row(AREA, "build CPU time (user + sys, with the sandbox runs)", f"{cpu:.0f} s", "-", None),
        _share(f"pass@1 on {result.heldout} held-out templated tasks", result.pass_at_1, result.eval_note,
               f">= {100 * TEMPLATED_GOAL:.0f}%", lambda v: v >= TEMPLATED_GOAL),
        _share(f"pass@1 on {result.natural} held-out requests in everyday words", scores.natural_pass_at_1,
               result.eval_note, f">= {100 * NATURAL_GOAL:.0f}%", lambda v: v >= NATURAL_GOAL),
        _share("answers with a syntax error, everyday-words set", scores.natural_syntax_errors, result.eval_note,
               f"<= {100 * SYNTAX_GOAL:.0f}%", lambda v: v <= SYNTAX_GOAL),
        _share("answers declined, everyday-words set (all are in scope)", scores.natural_declined, result.eval_note),
        _share(f"{result.out_of_scope} held-out out-of-scope requests declined in one line", scores.out_of_scope_declined,
               result.eval_note),
        Row(AREA, "corpus", f"{result.dialogues:,} dialogues, {result.code_blocks:,} code blocks checked", "-", None),
        Row(AREA, "model", f"{result.parameters:,} parameters, {result.vocab:,} tokens, {result.train_steps} steps", "-", None),
    ]
    return rows


def _share(measure: str, value: float | None, note: str, goal: str = "-",
           met: Callable[[float], bool] | None = None) -> Row:
    if value is None:
        return Row(AREA, measure, note, goal, None)
    return Row(AREA, measure, f"{100 * value:.1f}%", goal, met(value) if met else None)
