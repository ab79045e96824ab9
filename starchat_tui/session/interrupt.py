"""Ctrl+C in a terminal (line mode, print mode) while an answer streams or a code block runs: stop that work
and keep what came, instead of tearing the program down halfway."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def ctrl_c_calls(stop: Callable[[], None]) -> Iterator[None]:
    """Within the block, Ctrl+C calls ``stop`` instead of raising KeyboardInterrupt.

    ``stop`` is an engine's cancel (the stream then ends within a decode step, and the partial reply is
    appended marked interrupted, so the session saves it like any answer) or a run's cancel event. Off the
    main thread, where signals never arrive, this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: stop())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
