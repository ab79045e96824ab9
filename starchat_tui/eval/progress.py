"""A progress bar on stderr for long evaluations: one line redrawn on a terminal, sparse lines in a log."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """``label [#######       ] 37/100 · pass 64.9% · ETA 1:20``; in a log, a line every tenth of the way."""

    width = 24

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self.last_tenth = -1

    def update(self, done: int, note: str = "") -> None:
        if not self.live:
            tenth = done * 10 // self.total
            if tenth == self.last_tenth and done != self.total:
                return
            self.last_tenth = tenth
        filled = self.width * done // self.total
        elapsed = time.monotonic() - self.started
        parts = [f"{self.label} [{'#' * filled}{' ' * (self.width - filled)}] {done}/{self.total}"]
        if note:
            parts.append(note)
        if 0 < done < self.total:
            parts.append(f"ETA {clock(elapsed / done * (self.total - done))}")
        elif done == self.total:
            parts.append(f"{clock(elapsed)}")
        line = " · ".join(parts)
        if self.live:
            self.stream.write("\r\x1b[2K" + line + ("\n" if done == self.total else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End a live line that stopped short (an interrupt), so the next output starts clean."""
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
