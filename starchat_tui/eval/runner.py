"""Functional correctness: ask the model each task, extract its code, run it with the task's tests in the sandbox.

    from starchat_tui.engine import load_engine
    from starchat_tui.eval.runner import evaluate
    report = evaluate(load_engine("demo"), load_tasks("tasks.jsonl"), samples=1)
    report.pass_at  # {1: 0.74}

Generation runs on the engine while the sandbox checks the previous answers on worker threads, so the
two overlap. Model output only ever runs in the sandbox; where the machine has no safe sandbox the
evaluation stops before it generates anything, unless the caller allows running without one.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..chat.conversation import Conversation
from ..errors import UsageError
from .extract import extract_code
from .passk import default_ks, mean_pass_at_k
from .tasks import EvalTask

CHECK_TIMEOUT_S = 10.0
CHECK_WORKERS = 2
# Sampling for pass@k with k > 1 (the Codex paper's best temperature for large k); one sample is greedy.
SAMPLING_OPTIONS = {"temperature": 0.8, "top_p": 0.95}
GREEDY_OPTIONS = {"temperature": 0}
DEFAULT_MAX_NEW_TOKENS = 512


@dataclass
class Sample:
    """One answer to a task and what the sandbox made of it."""

    completion: str
    code: str | None
    passed: bool
    result: str  # "passed", "no code block", "timed out", or the error the tests ended with
    interrupted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"completion": self.completion, "code": self.code, "passed": self.passed, "result": self.result}


@dataclass
class TaskResult:
    """Every sample of one task."""

    task_id: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def correct(self) -> int:
        return sum(sample.passed for sample in self.samples)

    @property
    def passed(self) -> bool:
        """At least one sample passed (with one sample: it passed)."""
        return self.correct > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id, "passed": self.passed, "n": self.n, "correct": self.correct,
            "pass@1": self.correct / self.n if self.n else 0.0,
            "samples": [sample.as_dict() for sample in self.samples],
        }


@dataclass
class EvalReport:
    """The results of a run, complete or cut short."""

    results: list[TaskResult]
    samples: int
    ks: list[int]
    seconds: float
    backend: str
    total_tasks: int

    @property
    def complete(self) -> bool:
        return len(self.results) == self.total_tasks

    @property
    def pass_at(self) -> dict[int, float]:
        counts = [(r.n, r.correct) for r in self.results if r.n == self.samples]
        if not counts:
            return {}
        return {k: mean_pass_at_k(counts, k) for k in self.ks}

    def summary(self) -> str:
        scores = ", ".join(f"pass@{k} {100 * value:.1f}%" for k, value in self.pass_at.items()) or "no task finished"
        done = f"{len(self.results)} of {self.total_tasks} tasks" if not self.complete else f"{self.total_tasks} tasks"
        return f"{scores} on {done} ({self.samples} sample{'s' if self.samples != 1 else ''} each, " \
               f"{self.seconds:.0f} s, sandbox {self.backend})"


def program_for(task: EvalTask, code: str) -> str:
    """The program the sandbox runs: the answer, the task's tests, and the call to check()."""
    if not re.search(rf"^\s*(async\s+)?def\s+{re.escape(task.entry_point)}\s*\(", code, re.MULTILINE):
        code = task.prompt + code  # a body continuing the prompt, the way base models answer
    # HumanEval prompts import what their signatures use (from typing import List); answers often drop it.
    imports = [line for line in task.prompt.splitlines() if line.startswith(("import ", "from ")) and line not in code]
    header = "\n".join(imports) + "\n\n" if imports else ""
    return f"{header}{code}\n\n{task.test}\n\ncheck({task.entry_point})\n"


def describe_failure(result: Any) -> str:
    if result.timed_out:
        return "timed out"
    if result.stopped:
        return f"stopped: {result.stopped}"
    lines = [line for line in (result.stderr or "").strip().splitlines() if line.strip()]
    last = lines[-1].strip() if lines else f"exit code {result.exit_code}"
    return last[:300]


def require_sandbox(allow_unsafe: bool) -> str:
    """The sandbox backend's label; a UsageError before any work when there is no safe one."""
    from ..sandbox import probe_backend

    info = probe_backend()
    if not info.safe and not allow_unsafe:
        raise UsageError(
            f"no sandbox to run model code in: {info.reason}. Fix that, or pass --allow-unsafe to run the "
            "answers without one"
        )
    return info.label


class Checker:
    """Runs answers in the sandbox on worker threads, so checking overlaps with generating."""

    def __init__(self, timeout: float = CHECK_TIMEOUT_S, allow_unsafe: bool = False, workers: int = CHECK_WORKERS):
        self.timeout = timeout
        self.allow_unsafe = allow_unsafe
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="starchat-eval-check")
        self.cancel = threading.Event()

    def submit(self, task: EvalTask, completion: str, interrupted: bool = False) -> Future:
        return self.pool.submit(self.check, task, completion, interrupted)

    def check(self, task: EvalTask, completion: str, interrupted: bool = False) -> Sample:
        from ..sandbox import run

        code = extract_code(completion, task.entry_point)
        if code is None:
            return Sample(completion, None, False, "no code block", interrupted)
        result = run(program_for(task, code), "python", timeout=self.timeout, allow_unsafe=self.allow_unsafe,
                     cancel=self.cancel)
        passed = result.ok
        return Sample(completion, code, passed, "passed" if passed else describe_failure(result), interrupted)

    def close(self, *, cancel: bool = False) -> None:
        if cancel:
            self.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=cancel)


def answer(engine: Any, task: EvalTask, options: dict[str, Any], system: str | None = None) -> tuple[str, bool]:
    """The model's reply to the task as a fresh one-turn conversation, and whether it was cut off."""
    conversation = Conversation(system=system)
    conversation.add("user", task.user_message())
    for _ in engine.stream(conversation, **options):
        pass
    reply = conversation.messages[-1]
    return reply["content"], bool(reply.get("interrupted"))


def generation_options(samples: int, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Greedy for one sample, sampling for several; ``overrides`` (-o KEY=VALUE) win."""
    options: dict[str, Any] = dict(GREEDY_OPTIONS if samples == 1 else SAMPLING_OPTIONS)
    options["max_new_tokens"] = DEFAULT_MAX_NEW_TOKENS
    options.update(overrides or {})
    return options


def evaluate(
    engine: Any,
    tasks: Sequence[EvalTask],
    *,
    samples: int = 1,
    ks: Sequence[int] | None = None,
    options: dict[str, Any] | None = None,
    system: str | None = None,
    timeout: float = CHECK_TIMEOUT_S,
    allow_unsafe: bool = False,
    seed: int = 0,
    on_result: Callable[[TaskResult, int, int], None] | None = None,
) -> EvalReport:
    """Ask, extract and check every task ``samples`` times; ``on_result(result, done, total)`` after each task.

    Results arrive in task order. On KeyboardInterrupt the finished tasks are kept: the report comes back
    with ``complete`` False and the interrupt is raised again only after ``on_result`` saw every result.
    """
    if samples < 1:
        raise UsageError(f"--samples must be at least 1, not {samples}")
    ks = sorted(set(ks or default_ks(samples)))
    bad = [k for k in ks if not 1 <= k <= samples]
    if bad:
        raise UsageError(f"pass@{bad[0]} needs at least {bad[0]} samples per task; use --samples {bad[0]} or more")
    backend = require_sandbox(allow_unsafe)
    options = generation_options(samples, options)
    import torch

    torch.manual_seed(seed)
    started = time.perf_counter()
    checker = Checker(timeout, allow_unsafe)
    results: list[TaskResult] = []
    pending: list[tuple[EvalTask, list[Future]]] = []
    interrupted = False

    def collect(block: bool) -> None:
        while pending and (block or all(f.done() for f in pending[0][1])):
            task, futures = pending.pop(0)
            result = TaskResult(task.task_id, [f.result() for f in futures])
            results.append(result)
            if on_result:
                on_result(result, len(results), len(tasks))

    try:
        for task in tasks:
            futures = []
            for _ in range(samples):
                completion, cut = answer(engine, task, options, system)
                futures.append(checker.submit(task, completion, cut))
            pending.append((task, futures))
            collect(block=False)
        collect(block=True)
    except KeyboardInterrupt:
        interrupted = True
        # Keep the tasks whose checks had finished, in order, before cancelling the rest: a check cut
        # short by the interrupt says nothing about the answer.
        finished = 0
        while finished < len(pending) and all(f.done() for f in pending[finished][1]):
            finished += 1
        pending = pending[:finished]
        checker.cancel.set()
        collect(block=True)
    finally:
        checker.close(cancel=interrupted)
    report = EvalReport(results, samples, list(ks), time.perf_counter() - started, backend, len(tasks))
    if interrupted:
        raise EvalInterrupted(report)
    return report


class EvalInterrupted(KeyboardInterrupt):
    """Ctrl-C during an evaluation, carrying the report of the tasks that finished."""

    def __init__(self, report: EvalReport) -> None:
        super().__init__("interrupted")
        self.report = report
