"""Scoring answers generated elsewhere (``starchat-tui eval --tasks FILE --score SAMPLES.jsonl``): no model loads.

Each row of the samples file is one sample of one task, in either of two forms::

    {"task_id": "HumanEval/0", "completion": "    return sorted(numbers)\\n"}   # continues the prompt
    {"task_id": "HumanEval/0", "answer": "Here it is:\\n```python\\ndef ...```"}  # a chat reply

A ``completion`` is run exactly as HumanEval runs it (prompt + completion + test + ``check(entry_point)``),
so sample files written for HumanEval's own harness score the same here; an ``answer`` goes through the
same code extraction as ``eval --model``. Several rows for one task are several samples, and pass@k is
estimated over all of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .rows import json_rows
from .runner import (
    CHECK_TIMEOUT_S,
    Checker,
    EvalInterrupted,
    EvalReport,
    InOrder,
    TaskResult,
    require_sandbox,
    run_in_order,
)
from .tasks import EvalTask

FORMS = ('"completion" (text that continues the task\'s prompt, as HumanEval samples are) '
         'or "answer" (a chat reply with a code block)')


@dataclass(frozen=True)
class Submission:
    """One sample of one task, generated elsewhere."""

    task_id: str
    text: str
    continues_prompt: bool  # a HumanEval completion rather than a chat answer


def load_samples(path: str | Path, tasks: Sequence[EvalTask]) -> list[Submission]:
    """Every row of a samples file, checked against ``tasks``; each problem is named with its line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"{path}: no such samples file (expected JSON lines with task_id and {FORMS})")
    known = {task.task_id for task in tasks}
    submissions = []
    for where, row in json_rows(path, "sample"):
        if not isinstance(row, dict):
            raise UsageError(f"{where}: expected a JSON object with task_id and completion or answer, "
                             f"found {type(row).__name__}")
        task_id = row.get("task_id")
        if not isinstance(task_id, str):
            raise UsageError(f"{where}: no task_id; every sample names the task it answers")
        if task_id not in known:
            raise UsageError(f"{where}: task_id {task_id!r} is not in the tasks file; give the --tasks file "
                             "these samples answer")
        forms = [key for key in ("completion", "answer") if isinstance(row.get(key), str)]
        if len(forms) != 1:
            problem = "both completion and answer" if forms else "neither completion nor answer (as text)"
            raise UsageError(f"{where}: {problem}; give one of {FORMS}")
        submissions.append(Submission(task_id, row[forms[0]], forms[0] == "completion"))
    if not submissions:
        raise UsageError(f"{path}: no samples in it (expected JSON lines with task_id and {FORMS})")
    return submissions


def sample_counts(tasks: Sequence[EvalTask], submissions: Sequence[Submission]) -> dict[str, int]:
    """Samples per task, for the tasks that have any, in the tasks' order."""
    counts = {task.task_id: 0 for task in tasks}
    for submission in submissions:
        if submission.task_id in counts:
            counts[submission.task_id] += 1
    return {task_id: n for task_id, n in counts.items() if n}


def check_score_ks(ks: Sequence[int] | None, counts: dict[str, int]) -> list[int]:
    """The pass@k values to report: by default those the task with the fewest samples can estimate."""
    from .passk import default_ks

    if not counts:
        raise UsageError("none of the tasks to score has a sample; check --limit and the samples file")
    fewest_id, fewest = min(counts.items(), key=lambda item: item[1])
    chosen = sorted(set(ks or default_ks(fewest)))
    bad = [k for k in chosen if not 1 <= k <= fewest]
    if bad:
        raise UsageError(f"pass@{bad[0]} needs at least {bad[0]} samples of every task, and {fewest_id} has "
                         f"{fewest}; ask for a smaller -k")
    return chosen


def default_workers() -> int:
    # Each check is one sandboxed Python process and nothing else runs: one per CPU this process may use.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def score(
    tasks: Sequence[EvalTask],
    submissions: Sequence[Submission],
    *,
    ks: Sequence[int] | None = None,
    timeout: float = CHECK_TIMEOUT_S,
    allow_unsafe: bool = False,
    workers: int | None = None,
    on_result: Callable[[TaskResult, int, int], None] | None = None,
) -> EvalReport:
    """Check every submission in the sandbox; the tasks of ``tasks`` that have samples are reported, in order.

    ``on_result(result, done, total)`` after each task; Ctrl-C keeps the finished tasks, as :func:`evaluate`.
    """
    counts = sample_counts(tasks, submissions)
    chosen = check_score_ks(ks, counts)
    backend = require_sandbox(allow_unsafe)
    started = time.perf_counter()
    checker = Checker(timeout, allow_unsafe, workers=workers or default_workers())
    scored = [task for task in tasks if task.task_id in counts]
    order = InOrder(len(scored), on_result)

    def submit_all() -> None:
        # Every slot list is whole before a task joins the order: one task's rows may be anywhere in the file.
        slots: dict[str, list[Future | None]] = {task.task_id: [] for task in scored}
        tasks_by_id = {task.task_id: task for task in scored}
        for submission in submissions:
            task = tasks_by_id.get(submission.task_id)
            if task is None:
                continue  # a task left out by --limit
            check = checker.submit_completion if submission.continues_prompt else checker.submit
            slots[task.task_id].append(check(task, submission.text))
        for task in scored:
            order.add(task, slots[task.task_id])

    interrupted = run_in_order(checker, order, submit_all)
    report = EvalReport(order.results, min(counts.values()), chosen, time.perf_counter() - started, backend,
                        len(scored))
    if interrupted:
        raise EvalInterrupted(report)
    return report
