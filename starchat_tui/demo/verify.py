"""Run the corpus's code blocks and their asserts, in this process, fast.

The programs are our own templates filled with our own constants, never model output, so they run
in-process: each in a fresh namespace, with print silenced and a time limit (on the main thread) in
case a template ever loops. That keeps checking ten thousand blocks to about a second; model output is
only ever run in the sandbox (:mod:`starchat_tui.eval.runner`).
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
from collections.abc import Iterable
from typing import Any

TIME_LIMIT_S = 2.0


class _TimeLimit(Exception):
    pass


@contextlib.contextmanager
def _deadline(seconds: float):
    """SIGALRM after ``seconds``, where signals can be used (the main thread of a Unix process)."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise _TimeLimit()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def outcome(program: str) -> str | None:
    """None when ``program`` runs cleanly, else why not: ``SyntaxError: ...``, ``AssertionError``, ..."""
    try:
        code = compile(program, "<corpus>", "exec")
    except SyntaxError as error:
        return f"SyntaxError: {error.msg} (line {error.lineno})"
    namespace: dict[str, Any] = {"__name__": "__corpus__"}
    try:
        with _deadline(TIME_LIMIT_S), contextlib.redirect_stdout(io.StringIO()):
            exec(code, namespace)
    except _TimeLimit:
        return f"timed out after {TIME_LIMIT_S} s"
    except Exception as error:  # noqa: BLE001 - what a wrong program raises is the answer here
        return f"{type(error).__name__}: {error}".rstrip(": ")
    return None


def run_checks(checks: Iterable) -> list[str]:
    """Run every check; return one line per check that did not behave (an empty list: all good).

    A check that must pass must run cleanly. One that must fail must be valid Python that raises
    (a failed assert, or the error the bug causes), and must not time out.
    """
    failures = []
    for check in checks:
        problem = outcome(check.program)
        if check.must_pass and problem is not None:
            failures.append(f"{check.where}: should pass but {problem}\n{check.program}")
        elif not check.must_pass:
            if problem is None:
                failures.append(f"{check.where}: should fail but passes\n{check.program}")
            elif problem.startswith(("SyntaxError", "timed out")):
                failures.append(f"{check.where}: should fail an assert but {problem}\n{check.program}")
    return failures
