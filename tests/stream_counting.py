"""Counting the streams an engine has open at once, through its real ``stream``: the check that answers are
asked for side by side rather than one after another."""

from __future__ import annotations

import threading
from typing import Any


class StreamCounter:
    """Wraps ``engine.stream`` in place; ``asked`` counts streams started, ``peak`` the most open at once."""

    def __init__(self, engine: Any) -> None:
        self.asked = 0
        self.peak = 0
        self._open = 0
        self._lock = threading.Lock()
        real_stream = engine.stream

        def counted(conversation, **options):
            with self._lock:
                self._open, self.asked = self._open + 1, self.asked + 1
                self.peak = max(self.peak, self._open)
            try:
                yield from real_stream(conversation, **options)
            finally:
                with self._lock:
                    self._open -= 1

        engine.stream = counted
