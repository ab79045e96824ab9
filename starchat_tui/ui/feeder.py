"""Moving streamed text from the generation thread onto the screen without slowing either down.

The generation thread only appends to a :class:`TokenBuffer` (a lock and a list: no call into the UI per
token, because ``call_from_thread`` blocks until the UI has run it, which would tie decode speed to paint
speed). On the UI side a :class:`StreamFeeder` wakes every 40 ms, takes whatever arrived and writes it as
one fragment into the answer's ``MarkdownStream``, which re-parses only the last Markdown block. When the
buffer closes the feeder flushes the tail, so no token is ever dropped.

Painting is not free: each flush re-parses the last block, lays the screen out and renders what changed,
and on a small CPU that costs around 20 ms. The model runs in its own process (see
:mod:`starchat_tui.engine.process`), so painting does not hold up decoding through the interpreter lock,
but it still takes a share of the machine's cores. So the feeder watches how much CPU the UI thread spends
per flush and, when it exceeds :data:`UI_SHARE` of the time, waits longer between flushes (up to
:data:`MAX_INTERVAL`): a fast machine streams at 25 frames a second, a slow one at fewer, never under 10.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from ..chat.inert import make_inert

# 25 updates a second looks continuous. When the widget is slower than our writes (a long open code
# fence), MarkdownStream merges them until it catches up.
FLUSH_INTERVAL = 0.04
MAX_INTERVAL = 0.1  # 10 updates a second: slower reads as stutter
UI_SHARE = 0.5  # the most of one core the UI thread should spend painting while an answer streams


class TokenBuffer:
    """A thread-safe handoff of text chunks from a producer thread to the UI loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._closed = False
        self._error: BaseException | None = None
        self.chunks = 0

    def put(self, text: str) -> None:
        with self._lock:
            self._parts.append(text)
            self.chunks += 1

    def close(self, error: BaseException | None = None) -> None:
        """No more text is coming; ``error`` is what stopped the producer, if anything did."""
        with self._lock:
            self._closed = True
            self._error = error

    def take(self) -> tuple[str, bool]:
        """Everything that arrived since the last call, and whether the producer has finished."""
        with self._lock:
            text = "".join(self._parts)
            self._parts.clear()
            return text, self._closed

    @property
    def error(self) -> BaseException | None:
        return self._error


@contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Keep the cyclic garbage collector off the objects that existed before an answer began.

    The app holds hundreds of thousands of long-lived objects (widgets, styles, parsed Markdown), and a
    full collection walks them all: tens of milliseconds, a visible hitch every few frames while an answer
    streams. Frozen, they are skipped; what the answer itself creates is still collected as usual, and
    at the end everything is handed back to the collector, so no garbage outlives the answer.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class StreamFeeder:
    """Drains a :class:`TokenBuffer` into a Markdown stream on a timer and returns the whole raw text."""

    def __init__(
        self,
        buffer: TokenBuffer,
        write: Callable[[str], Awaitable[None]],
        *,
        on_progress: Callable[[str], None] | None = None,
        interval: float = FLUSH_INTERVAL,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.buffer = buffer
        self.cpu_clock = cpu_clock
        self.write = write
        self.on_progress = on_progress
        self.interval = interval
        self.current_interval = interval
        self.widest_interval = interval  # the longest wait it chose, for benchmarks and tests
        self.text = ""
        self.flushes = 0
        self.worst_flush_s = 0.0

    async def run(self) -> str:
        """Feed until the producer closes the buffer; the raw (not yet inert) text is returned."""
        with long_lived_objects_frozen():
            return await self._feed()

    async def _feed(self) -> str:
        while True:
            # CPU time of this (the UI) thread over a whole cycle: the flush and the repaint it caused.
            cpu_started = self.cpu_clock()
            await asyncio.sleep(self.current_interval)
            chunk, closed = self.buffer.take()
            if chunk:
                await self._flush(chunk)
            used = self.cpu_clock() - cpu_started
            self.current_interval = min(MAX_INTERVAL, max(self.interval, used / UI_SHARE))
            self.widest_interval = max(self.widest_interval, self.current_interval)
            if closed:
                # take() reads the text and the closed flag under one lock, and the producer puts before it
                # closes, so this flush held the tail: nothing is left behind.
                return self.text

    async def _flush(self, chunk: str) -> None:
        started = time.perf_counter()
        self.text += chunk
        await self.write(make_inert(chunk))
        self.flushes += 1
        if self.on_progress is not None:
            self.on_progress(self.text)
        self.worst_flush_s = max(self.worst_flush_s, time.perf_counter() - started)
