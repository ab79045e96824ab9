"""An engine in its own process, behind the same small interface the chat app uses for an in-process one.

Why a process: a small model decoding on a CPU spends most of each step in Python, holding the
interpreter lock, and so does painting the screen. In one process every frame the UI paints is a pause
in generation (10% of one core spent painting cost 10% of tokens/s in ``bench/``); in two, the UI has
its own lock and, on any machine with two cores, its own core.

:class:`EngineProcess` looks like :class:`~starchat_tui.engine.engine.Engine` to the app: ``stream``
yields text and appends the reply to the conversation, ``cancel`` stops it after the current step,
``stats`` and ``warnings`` describe the last answer, and ``renderer`` renders and counts prompts with the
model's own tokenizer (its calls cross to the engine process, so this process never imports torch).

The engine process writes its log (library warnings, a crash's traceback) to a file, never to the
terminal the app draws on; an engine that dies says where that file is.
"""

from __future__ import annotations

import itertools
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from ..chat.conversation import Conversation
from ..errors import ModelLoadError, StarchatError
from .loading import Progress
from .protocol import GenerationStats
from .render import PromptRenderer
from .wire import Channel, error_from_wire, read_message

# A reply in progress when the consumer stops reading is cancelled; this long is allowed for its end.
CANCEL_GRACE_S = 30.0
CLOSE_GRACE_S = 5.0


class EngineProcessError(StarchatError):
    """The engine process stopped when it should not have."""


class _Pending:
    """A request waiting for its answer, or a stream's queue of messages."""

    def __init__(self) -> None:
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()


class RemoteTokenizer:
    """The few tokenizer methods :class:`PromptRenderer` uses, answered by the engine process."""

    def __init__(self, engine: EngineProcess, chat_template: str | None) -> None:
        self._engine = engine
        self.chat_template = chat_template

    def __call__(self, text: str, **kwargs: Any) -> dict[str, list[int]]:
        return {"input_ids": self._engine.call("encode", text, **kwargs)}

    def decode(self, ids: list[int], **kwargs: Any) -> str:
        return self._engine.call("decode", list(ids), **kwargs)

    def apply_chat_template(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        return self._engine.call("apply_chat_template", messages, **kwargs)


class EngineProcess:
    """A model loaded and run by a child process; start one with :func:`start_engine_process`."""

    def __init__(self, command: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            self._process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                close_fds=True,
            )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._channel = Channel(self._process.stdin)
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()  # loading: progress, then ready or failed
        self._dead: Exception | None = None
        self._keep_log = False  # set when the log holds something worth reading: a crash or a traceback
        self._busy = threading.Lock()
        self.model_name = ""
        self.device = ""
        self.dtype = ""
        self._renderer: PromptRenderer | None = None
        self.stats = GenerationStats()
        self.warnings: list[str] = []
        self.concurrent_streams = 1  # one KV cache, one reply at a time
        self._reader = threading.Thread(target=self._read, name="starchat-engine-reader", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def renderer(self) -> PromptRenderer:
        if self._renderer is None:
            raise EngineProcessError("no model is loaded in this engine process yet")
        return self._renderer

    @property
    def context_limit(self) -> int:
        return self._renderer.context_limit if self._renderer is not None else 0

    # -- the child's messages ------------------------------------------------------------------------

    def _read(self) -> None:
        stream = self._process.stdout
        assert stream is not None
        while True:
            try:
                message = read_message(stream)
            except ValueError:  # not one of our lines: the child's log would say who wrote it
                continue
            except OSError:
                message = None
            if message is None:
                break
            ident = message.get("id")
            if ident is None:
                self._events.put(message)
                continue
            with self._pending_lock:
                pending = self._pending.get(ident)
            if pending is not None:
                pending.messages.put(message)
        self._died()

    def _gone(self) -> Exception:
        return self._dead if self._dead is not None else EngineProcessError("the model's process has ended")

    def _died(self) -> None:
        try:
            code = self._process.wait(timeout=CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            code = None
        how = "was closed" if code == 0 else (
            f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}")
        self._dead = EngineProcessError(f"the model's process {how} (its log: {self.log_path})")
        gone = {"op": "gone"}
        self._events.put(gone)
        with self._pending_lock:
            for pending in self._pending.values():
                pending.messages.put(gone)

    def _error(self, fields: dict[str, str]) -> Exception:
        error = error_from_wire(fields)
        if isinstance(error, StarchatError):
            return error
        self._keep_log = True
        return type(error)(f"{error} (traceback in {self.log_path})")

    def _open(self) -> tuple[int, _Pending]:
        ident = next(self._ids)
        pending = _Pending()
        with self._pending_lock:
            self._pending[ident] = pending
        return ident, pending

    def _forget(self, ident: int) -> None:
        with self._pending_lock:
            self._pending.pop(ident, None)

    def _send(self, op: str, **fields: Any) -> None:
        if self._dead is not None:
            raise self._gone()
        try:
            self._channel.send(op, **fields)
        except (OSError, ValueError):  # the pipe is gone: the reader is about to say why
            self._reader.join(timeout=CLOSE_GRACE_S)
            raise self._dead or EngineProcessError(f"the model's process is gone (its log: {self.log_path})") from None

    # -- loading -------------------------------------------------------------------------------------

    def load(self, model: str, progress: Progress | None = None, **options: Any) -> None:
        """Ask the child to load ``model`` and wait, passing on each step; raises what loading raised."""
        self._send("load", model=model, **options)
        while True:
            event = self._events.get()
            if event["op"] == "progress":
                if progress is not None:
                    progress(event["step"])
            elif event["op"] == "ready":
                self.model_name, self.device, self.dtype = event["model_name"], event["device"], event["dtype"]
                self._renderer = PromptRenderer(RemoteTokenizer(self, event.get("chat_template")), event["context_limit"])
                return
            elif event["op"] == "failed":
                raise self._error(event["error"])
            elif event["op"] == "gone":
                raise ModelLoadError(f"could not load {model}: {self._dead}")

    # -- the Engine interface ------------------------------------------------------------------------

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run one tokenizer method in the engine process and return its result."""
        ident, pending = self._open()
        try:
            self._send("call", id=ident, method=method, args=list(args), kwargs=kwargs)
            answer = pending.messages.get()
        finally:
            self._forget(ident)
        if answer["op"] == "gone":
            raise self._gone()
        if "error" in answer:
            raise self._error(answer["error"])
        return answer["value"]

    def cancel(self) -> None:
        """Stop the reply being generated; it ends after the current decode step."""
        try:
            self._send("cancel")
        except StarchatError:
            pass  # nothing is generating in a process that is gone

    def reset_cache(self) -> None:
        self._send("reset_cache")

    def stream(self, conversation: Conversation, **generation_options: Any) -> Generator[str, None, None]:
        """Yield the reply to ``conversation`` as it is generated, then append it to the conversation.

        As with an in-process engine, a reply that was cancelled or that the consumer stopped reading is
        appended with ``"interrupted": True``, and an error in generation is raised here.
        """
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("this engine is already generating; cancel() it or wait for the reply")
        ident, pending = self._open()
        sent = ended = False
        try:
            messages = [{"role": m["role"], "content": m["content"]} for m in conversation.for_model()]
            self._send("stream", id=ident, messages=messages, options=generation_options)
            sent = True
            while True:
                message = pending.messages.get()
                if message["op"] == "chunk":
                    yield message["text"]
                    continue
                ended = True
                self._end(conversation, message)
                return
        finally:
            if sent and not ended:  # the consumer stopped reading: stop the answer and keep what it became
                self.cancel()
                deadline = time.monotonic() + CANCEL_GRACE_S
                while time.monotonic() < deadline:
                    try:
                        message = pending.messages.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    if message["op"] != "chunk":
                        try:
                            self._end(conversation, message)
                        except Exception:  # the consumer has gone; nobody is left to hear of it
                            pass
                        break
            self._forget(ident)
            self._busy.release()

    def replies(self, conversation: Conversation, n: int, **generation_options: Any) -> list[str]:
        """``n`` replies to ``conversation`` from one batched generate in the engine process (see ChatEngine)."""
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("this engine is already generating; cancel() it or wait for the reply")
        ident, pending = self._open()
        try:
            messages = [{"role": m["role"], "content": m["content"]} for m in conversation.for_model()]
            self._send("replies", id=ident, messages=messages, n=n, options=generation_options)
            message = self._wait_end(pending)
        except BaseException:
            # Ctrl-C: stop the batch, and let it end before the engine takes another request.
            self.cancel()
            self._wait_end(pending, within=CANCEL_GRACE_S)
            raise
        finally:
            self._forget(ident)
            self._busy.release()
        if message is None:  # only a wait with a time limit comes back empty
            raise self._gone()
        self._end(Conversation(), message)
        return list(message["replies"])

    def _wait_end(self, pending: _Pending, within: float | None = None) -> dict[str, Any] | None:
        """The request's end message, waited for in short steps so that Ctrl-C gets through; None past ``within``."""
        deadline = None if within is None else time.monotonic() + within
        while deadline is None or time.monotonic() < deadline:
            try:
                message = pending.messages.get(timeout=0.1)
            except queue.Empty:
                continue
            if message["op"] != "chunk":
                return message
        return None

    def _end(self, conversation: Conversation, message: dict[str, Any]) -> None:
        if message["op"] == "gone":
            raise self._gone()
        if "stats" in message:
            self.stats = GenerationStats(**message["stats"])
            self.warnings = list(message.get("warnings") or [])
        if "error" in message:
            raise self._error(message["error"])
        reply = message.get("reply")
        if reply is not None:
            conversation.add("assistant", reply["content"], **{k: v for k, v in reply.items() if k not in ("role", "content")})

    def close(self) -> None:
        """End the engine process (it stops any answer at once) and wait for it."""
        self._channel.close()
        try:
            self._process.wait(timeout=CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._reader.join(timeout=CLOSE_GRACE_S)
        if self._process.returncode == 0 and not self._keep_log:
            try:
                self.log_path.unlink()
            except OSError:
                pass

    def __enter__(self) -> EngineProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def engine_log_path() -> Path:
    from ..config import cache_dir

    return cache_dir() / "logs" / f"engine-{os.getpid()}-{time.time_ns()}.log"


def spawn_engine_process() -> EngineProcess:
    """A fresh engine process with no model yet: call its ``load``; ``close`` it to stop a load midway."""
    return EngineProcess([sys.executable, "-m", "starchat_tui.engine.child"], engine_log_path())


def start_engine_process(model: str, *, progress: Progress | None = None, **load_options: Any) -> EngineProcess:
    """Start an engine process and load ``model`` in it; ``load_options`` are :func:`load_engine`'s
    (device, dtype, quantize, trust_remote_code)."""
    engine = spawn_engine_process()
    try:
        engine.load(model, progress, **load_options)
    except BaseException:
        engine.close()
        raise
    return engine
