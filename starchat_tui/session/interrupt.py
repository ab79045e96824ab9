"""Ctrl+C while an answer streams in a terminal (line mode, print mode): stop the answer, keep what came."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..engine.protocol import ChatEngine


@contextmanager
def ctrl_c_cancels(engine: ChatEngine) -> Iterator[None]:
    """While streaming, Ctrl+C asks the engine to stop instead of raising KeyboardInterrupt.

    The stream then ends on its own within a decode step, and the engine appends the partial reply
    marked interrupted, so nothing is torn down halfway and the session saves it like any answer.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: engine.cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
