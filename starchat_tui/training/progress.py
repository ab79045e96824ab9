"""The progress bar on stderr: step, loss, tokens per second and time left.

On a terminal it is one line redrawn in place; in a log file (CI, nohup, a cluster job) it prints a
plain line at every logging step instead, so logs stay readable. Only the main process draws it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from transformers import TrainerCallback


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _count(value: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


class ProgressBar(TrainerCallback):
    """A Trainer callback drawing ``step 40/300 [####    ] loss 1.234 · 3.1k tok/s · ETA 2:10``."""

    width = 24

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.loss: float | None = None
        self.start_time = 0.0
        self.start_step = 0
        self.start_tokens = 0
        self.printed_step = -1

    def _write(self, text: str, *, final: bool = False) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def line(self, state) -> str:
        total = max(state.max_steps, 1)
        done = min(state.global_step, total)
        filled = int(self.width * done / total)
        elapsed = time.monotonic() - self.start_time
        steps = done - self.start_step
        tokens = state.num_input_tokens_seen - self.start_tokens
        parts = [f"step {done}/{total} [{'#' * filled}{' ' * (self.width - filled)}]"]
        if self.loss is not None:
            parts.append(f"loss {self.loss:.4f}")
        if elapsed > 0 and tokens > 0:
            parts.append(f"{_count(tokens / elapsed)} tok/s")
        if steps > 0:
            parts.append(f"ETA {_duration(elapsed / steps * (total - done))}")
        return " · ".join(parts)

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.start_time = time.monotonic()
            self.start_step = state.global_step
            self.start_tokens = state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and self.live:
            self._write(self.line(state))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "loss" in logs:
            self.loss = float(logs["loss"])
            if not self.live:
                self._write(self.line(state))
                self.printed_step = state.global_step
        elif "eval_loss" in logs:
            self._write(f"eval loss {logs['eval_loss']:.4f} at step {state.global_step}", final=True)

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero and not self.live:
            self._write(f"saved checkpoint-{state.global_step}")

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and (self.live or self.printed_step != state.global_step):
            self._write(self.line(state), final=True)
