"""Progress of a training run, as events for a callback: step, loss, tokens per second and time left.

``run_training(config, on_progress=...)`` hands every status line and every step to the callback as a
:class:`TrainProgress`, from the main process only. :class:`ProgressPrinter` is the one way they are
drawn as text: on a terminal the bar is one line redrawn in place; in a log file (CI, nohup, a cluster
job) a plain line is printed at every logging step instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from transformers import TrainerCallback

# What a TrainProgress reports:
#   note        a status line (data, tokens, loading, resuming...)
#   step        an optimizer step; for a bar redrawn in place, too many lines for a log
#   log         a logging step, with the latest loss
#   eval        an evaluation loss
#   checkpoint  a checkpoint was saved
#   end         training is over (the last step's line)
#   saved       the model is saved; ``path`` is its folder
KINDS = ("note", "step", "log", "eval", "checkpoint", "end", "saved")


@dataclass(frozen=True)
class TrainProgress:
    """One thing a training run reports, and the line that shows it."""

    kind: str
    text: str
    step: int = 0
    total: int = 0
    loss: float | None = None
    path: str | None = None


OnProgress = Callable[[TrainProgress], None]


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _count(value: float) -> str:
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


class ProgressReporter(TrainerCallback):
    """A Trainer callback turning its state into :class:`TrainProgress` events, on the main process only.

    Each step's line reads ``step 40/300 [####    ] loss 1.234 · 3.1k tok/s · ETA 2:10``.
    """

    width = 24

    def __init__(self, on_progress: OnProgress) -> None:
        self.on_progress = on_progress
        self.loss: float | None = None
        self.start_time = 0.0
        self.start_step = 0
        self.start_tokens = 0

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

    def _emit(self, kind: str, state, text: str | None = None) -> None:
        self.on_progress(TrainProgress(kind, text if text is not None else self.line(state), step=state.global_step,
                                       total=state.max_steps, loss=self.loss))

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.start_time = time.monotonic()
            self.start_step = state.global_step
            self.start_tokens = state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._emit("step", state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "loss" in logs:
            self.loss = float(logs["loss"])
            self._emit("log", state)
        elif "eval_loss" in logs:
            self._emit("eval", state, f"eval loss {logs['eval_loss']:.4f} at step {state.global_step}")

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._emit("checkpoint", state, f"saved checkpoint-{state.global_step}")

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._emit("end", state)


class ProgressPrinter:
    """Draws :class:`TrainProgress` events on a text stream (stderr by default).

    Status lines go to ``note`` (default: ``starchat-tui train: LINE`` on the stream). The bar is redrawn
    in place on a terminal; elsewhere a line is printed at each logging step, eval and checkpoint.
    """

    def __init__(self, stream: TextIO | None = None, note: Callable[[str], None] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.note = note or (lambda text: print(f"starchat-tui train: {text}", file=self.stream, flush=True))
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.printed_step = -1

    def _write(self, text: str, *, final: bool = False) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def __call__(self, event: TrainProgress) -> None:
        if event.kind in ("note", "saved"):
            self.note(event.text)
        elif event.kind == "step":
            if self.live:
                self._write(event.text)
        elif event.kind == "log":
            if not self.live:
                self._write(event.text)
                self.printed_step = event.step
        elif event.kind == "eval":
            self._write(event.text, final=True)
        elif event.kind == "checkpoint":
            if not self.live:
                self._write(event.text)
        elif event.kind == "end" and (self.live or self.printed_step != event.step):
            self._write(event.text, final=True)
