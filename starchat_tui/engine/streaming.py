"""The bridge between ``generate`` on a worker thread and the consumer of text chunks.

Two traps shape this module. ``generate`` calls ``streamer.end()`` only when it returns normally, so
an exception would leave the consumer waiting forever; here the worker forwards the exception through
the queue. And a thread cannot be killed, so cancelling is a stopping criterion that the decode loop
checks after every step, which also leaves the KV cache consistent.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import torch
from transformers import StoppingCriteria, TextIteratorStreamer

# Text is handed to the consumer at most this often; faster tokens ride along with the next hand-over.
COALESCE_S = 0.02


class CancelCriterion(StoppingCriteria):
    """Stops generation after the current step once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class WorkerFailed:
    """Carries an exception from the worker thread through the text queue."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ChunkStreamer(TextIteratorStreamer):
    """A TextIteratorStreamer that forwards worker errors, ends once, drops empty chunks and keeps timings.

    Only the stop tokens are left out of the text. Other special tokens a model emits stay in as text,
    so the reply re-renders to the very ids the model produced and the KV cache stays reusable.
    """

    def __init__(self, tokenizer: Any, stop_ids: list[int]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=False)
        self._stop_ids = torch.tensor(stop_ids, dtype=torch.long)
        self._read = 0
        self._ended = False
        self._pending = ""  # text decoded but not yet handed to the consumer
        self._handed_at = 0.0
        self.first_token_at: float | None = None
        self.first_tokens = 0  # how many came in the first hand-over: several when a lookup draft was accepted
        self.last_token_at: float | None = None

    def put(self, value: torch.Tensor) -> None:
        if self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        now = time.perf_counter()
        ids = value.reshape(-1)
        if self.first_token_at is None:
            self.first_token_at, self.first_tokens = now, ids.numel()
        self.last_token_at = now
        self.token_cache.extend(ids[~torch.isin(ids, self._stop_ids.to(ids.device))].tolist())
        self._emit_stable_text()

    def _emit_stable_text(self) -> None:
        """Decode only a window behind the new tokens, not the whole reply.

        ``self.print_len`` marks where the window starts, ``self._read`` how far text has been emitted.
        Decoding the window twice, with and without the new tokens, gives exactly the new text, spaces
        that tokenizers attach to the next word included. The base class waits for a space, which stalls
        text with none (minified code, CJK, a rambling model); only an incomplete UTF-8 sequence (U+FFFD
        at the end) has to wait here.
        """
        start, read = self.print_len, self._read
        before = self._decode(self.token_cache[start:read])
        after = self._decode(self.token_cache[start:])
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self.on_finalized_text(after[len(before) :])
            self.print_len, self._read = read, len(self.token_cache)

    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, **self.decode_kwargs))

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        # Each wake-up of the consumer thread is a handoff of the interpreter lock that the decode loop
        # waits out, a few percent of tokens/s on a small model. So text that follows the last hand-over
        # within COALESCE_S waits for the next token and goes with it; the first text goes at once.
        self._pending += text
        now = time.perf_counter()
        if self._pending and (stream_end or now - self._handed_at >= COALESCE_S):
            self.text_queue.put(self._pending, timeout=self.timeout)
            self._pending, self._handed_at = "", now
        if stream_end:
            self.text_queue.put(self.stop_signal, timeout=self.timeout)

    def fail(self, error: BaseException) -> None:
        self.text_queue.put(WorkerFailed(error))

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        # Whatever is still held back (an incomplete character at the very end) goes out as it is.
        tail = self._decode(self.token_cache[self.print_len :])
        held = self._decode(self.token_cache[self.print_len : self._read])
        self.on_finalized_text(tail[len(held) :], stream_end=True)

    def __next__(self) -> str:
        value = self.text_queue.get(timeout=self.timeout)
        if isinstance(value, WorkerFailed):
            raise value.error
        if value is self.stop_signal:
            raise StopIteration()
        return value
