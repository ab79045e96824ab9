"""`eval --concurrency`: several answers in flight on an engine that streams several, results still in task order.

The engine here is a small scripted stand-in for a server engine (the real remote engine brings its own
test); everything else is real: the runner, the order it reports in, and the checks in the real sandbox.
"""

from __future__ import annotations

import re
import sys
import threading
import time

import pytest

from starchat_tui.eval.runner import EvalInterrupted, evaluate
from starchat_tui.eval.tasks import EvalTask

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox backends are Linux-only"),
    pytest.mark.timeout(120),
]


def add_task(index: int) -> EvalTask:
    """``add_<index>(x)`` must return x + index: each task's right answer differs, so a swapped answer fails."""
    name = f"add_{index}"
    return EvalTask(f"t/{index}", f'def {name}(x):\n    """Return x plus {index}."""\n',
                    f"def check(candidate):\n    assert candidate(1) == {1 + index}\n", name)


class ScriptedServer:
    """A thread-safe engine that streams up to ``concurrent_streams`` replies at once, like a batching server.

    It answers from the conversation it is given (the function named in the question), right or wrong as
    scripted, and takes longer on earlier tasks so that later answers finish first.
    """

    model_name = "scripted"
    device = "remote"
    dtype = "n/a"

    def __init__(self, concurrent_streams: int, wrong: set[int] = frozenset(), delays: dict[int, float] | None = None,
                 fail: dict[int, BaseException] | None = None) -> None:
        self.concurrent_streams = concurrent_streams
        self.wrong = wrong
        self.delays = delays or {}
        self.fail = fail or {}
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.finished: list[int] = []
        self.threads: set[str] = set()
        self.cancelled = threading.Event()

    def stream(self, conversation, **options):
        question = conversation.messages[-1]["content"]
        index = int(re.search(r"def add_(\d+)\(", question).group(1))
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.threads.add(threading.current_thread().name)
        try:
            if index in self.fail:
                raise self.fail[index]
            deadline = time.monotonic() + self.delays.get(index, 0.0)
            while time.monotonic() < deadline and not self.cancelled.is_set():
                time.sleep(0.005)
            body = f"x - {index}" if index in self.wrong else f"x + {index}"
            reply = f"Here:\n```python\ndef add_{index}(x):\n    return {body}\n```"
            yield reply
            conversation.add("assistant", reply)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.finished.append(index)

    def replies(self, conversation, n, **options):
        """A task's samples, for a runner that can ask only one stream at a time: one after the other."""
        answers = []
        for _ in range(n):
            copy = conversation.copy()
            for _ in self.stream(copy, **options):
                pass
            answers.append(copy.messages[-1]["content"])
        return answers

    def cancel(self) -> None:
        self.cancelled.set()


TASKS = [add_task(index) for index in range(10)]
# Earlier tasks take longest: with several streams, answers come back roughly in reverse.
DELAYS = {index: 0.05 * (len(TASKS) - index) for index in range(len(TASKS))}


def run(engine, concurrency, **kwargs):
    seen = []
    report = evaluate(engine, TASKS, concurrency=concurrency, timeout=5,
                      on_result=lambda result, done, total: seen.append((result.task_id, done, total)), **kwargs)
    return report, seen


def test_several_answers_in_flight_and_results_still_in_task_order():
    engine = ScriptedServer(concurrent_streams=4, wrong={2, 7}, delays=DELAYS)
    report, seen = run(engine, concurrency=8)
    assert engine.most_in_flight == 4  # min(--concurrency 8, the engine's 4 streams)
    assert engine.finished != sorted(engine.finished)  # answers really did finish out of order
    assert seen == [(task.task_id, done, len(TASKS)) for done, task in enumerate(TASKS, 1)]
    # Each answer was checked against its own task: only the scripted wrong ones fail.
    assert [r.passed for r in report.results] == [index not in {2, 7} for index in range(len(TASKS))]
    assert report.complete and report.pass_at == {1: pytest.approx(0.8)}
    assert all(name.startswith("starchat-eval-generate") for name in engine.threads)


def test_concurrency_below_the_engines_streams_is_the_limit():
    engine = ScriptedServer(concurrent_streams=8, delays=DELAYS)
    report, _ = run(engine, concurrency=3, samples=2, ks=[1, 2])
    assert engine.most_in_flight == 3
    assert [r.n for r in report.results] == [2] * len(TASKS) and report.pass_at == {1: 1.0, 2: 1.0}


@pytest.mark.parametrize("streams,concurrency", [(1, 8), (4, 1)])
def test_one_stream_at_a_time_generates_in_the_calling_thread_as_before(streams, concurrency):
    engine = ScriptedServer(concurrent_streams=streams, wrong={3}, delays=DELAYS)
    report, seen = run(engine, concurrency=concurrency)
    assert engine.most_in_flight == 1
    assert engine.threads == {threading.current_thread().name}
    assert engine.finished == list(range(len(TASKS)))
    assert [task_id for task_id, _, _ in seen] == [task.task_id for task in TASKS]
    assert [r.passed for r in report.results] == [index != 3 for index in range(len(TASKS))]


def test_an_engine_error_stops_the_run_and_the_other_streams():
    engine = ScriptedServer(concurrent_streams=4, delays={index: 5.0 for index in range(len(TASKS))},
                            fail={1: ConnectionError("server went away")})
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="server went away"):
        run(engine, concurrency=4)
    assert engine.cancelled.is_set()
    assert time.monotonic() - started < 4.0  # the streams still writing were stopped, not waited for
    assert engine.in_flight == 0


def test_ctrl_c_keeps_the_finished_tasks_in_order():
    # Tasks 0-4 answer at once; task 6 is interrupted while 5 and 7-9 are slow.
    delays = {index: (0.0 if index < 5 else 3.0) for index in range(len(TASKS))}
    engine = ScriptedServer(concurrent_streams=6, delays=delays, fail={6: KeyboardInterrupt()})
    seen = []
    with pytest.raises(EvalInterrupted) as stop:
        evaluate(engine, TASKS, concurrency=6, timeout=5,
                 on_result=lambda result, done, total: seen.append(result.task_id))
    report = stop.value.report
    assert not report.complete and engine.cancelled.is_set()
    kept = [r.task_id for r in report.results]
    assert kept == seen == [task.task_id for task in TASKS[: len(kept)]]
    assert len(kept) <= 5  # never past the interrupted task, and never with a gap
