"""The engine process: loads one model and answers the chat app over stdin and stdout.

Run as ``python -m starchat_tui.engine.child`` by :mod:`starchat_tui.engine.process`; not a command for
people. Decoding a small model on a CPU is bound by Python, not by arithmetic, so in the app's process it
would share one interpreter lock with the UI, and every frame painted would be a pause in generation.
Here it has the lock to itself.

Threads: the main thread reads requests and answers the quick ones (tokenizer calls, cancel) at once, so
a cancel is never queued behind a long answer; loading and each answer run on threads of their own.
When stdin closes (the app quit, crashed or was killed) the process exits at once, mid-answer or not.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from typing import Any

from ..errors import StarchatError
from .wire import Channel, error_to_wire, read_message

# The tokenizer methods the app's PromptRenderer calls; nothing else is reachable from outside.
TOKENIZER_CALLS = {"encode", "decode", "apply_chat_template"}


class Worker:
    """One model and the requests about it."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.engine: Any = None
        # Cleared before the answer's "end" goes out, so the app may ask again the moment it reads that.
        self.answering = threading.Event()

    def handle(self, request: dict[str, Any]) -> None:
        op = request.get("op")
        if op == "load":
            threading.Thread(target=self.load, args=(request,), name="starchat-load", daemon=True).start()
        elif op == "cancel":
            if self.engine is not None:
                self.engine.cancel()
        elif op == "reset_cache":
            if self.engine is not None and not self.answering.is_set():
                self.engine.reset_cache()
        elif op == "call":
            self.call(request)
        elif op in ("stream", "replies"):
            self.stream(request)
        else:
            self.channel.send("result", id=request.get("id"), error={"type": "RuntimeError",
                                                                      "message": f"unknown request {op!r}"})

    def load(self, request: dict[str, Any]) -> None:
        from .engine import load_engine

        try:
            options = {key: value for key, value in request.items() if key not in ("op", "model")}
            engine = load_engine(request["model"], progress=lambda step: self.channel.send("progress", step=step),
                                 **options)
        except BaseException as error:  # every failure reaches the app as one message
            log_unexpected(error)
            self.channel.send("failed", error=error_to_wire(error))
            return
        self.engine = engine
        self.channel.send(
            "ready", model_name=engine.model_name, device=engine.device, dtype=engine.dtype,
            context_limit=engine.context_limit, chat_template=getattr(engine.tokenizer, "chat_template", None),
        )

    def call(self, request: dict[str, Any]) -> None:
        method = request.get("method")
        if self.engine is None or method not in TOKENIZER_CALLS:
            problem = "the model is not loaded yet" if self.engine is None else f"no such call {method!r}"
            self.channel.send("result", id=request["id"], error={"type": "RuntimeError", "message": problem})
            return
        tokenizer = self.engine.tokenizer
        args, kwargs = request.get("args", []), request.get("kwargs", {})
        try:
            # "encode" is the tokenizer's __call__, whose ids are what a renderer counts.
            value = tokenizer(*args, **kwargs)["input_ids"] if method == "encode" else getattr(tokenizer, method)(*args, **kwargs)
        except Exception as error:
            self.channel.send("result", id=request["id"], error=error_to_wire(error))
        else:
            self.channel.send("result", id=request["id"], value=value)

    def stream(self, request: dict[str, Any]) -> None:
        if self.engine is None or self.answering.is_set():
            problem = "the model is not loaded yet" if self.engine is None else "the engine is already generating"
            self.channel.send("end", id=request["id"], error={"type": "RuntimeError", "message": problem})
            return
        self.answering.set()
        answer = self._answer if request["op"] == "stream" else self._replies
        threading.Thread(target=answer, args=(request,), name="starchat-answer", daemon=True).start()

    def _answer(self, request: dict[str, Any]) -> None:
        from ..chat.conversation import Conversation

        conversation = Conversation.from_messages(request["messages"])
        before = len(conversation.messages)
        send, ident = self.channel.send, request["id"]
        try:
            for text in self.engine.stream(conversation, **request.get("options", {})):
                send("chunk", id=ident, text=text)
        except BaseException as error:
            log_unexpected(error)
            outcome: dict[str, Any] = {"error": error_to_wire(error)}
        else:
            added = conversation.messages[before:]
            outcome = {"reply": added[-1] if added else None}
        self.answering.clear()
        send("end", id=ident, stats=self.engine.stats.as_dict(), warnings=self.engine.warnings, **outcome)


    def _replies(self, request: dict[str, Any]) -> None:
        from ..chat.conversation import Conversation

        conversation = Conversation.from_messages(request["messages"])
        try:
            outcome: dict[str, Any] = {"replies": self.engine.replies(conversation, request["n"],
                                                                      **request.get("options", {}))}
        except BaseException as error:
            log_unexpected(error)
            outcome = {"error": error_to_wire(error)}
        self.answering.clear()
        self.channel.send("end", id=request["id"], stats=self.engine.stats.as_dict(), warnings=self.engine.warnings,
                          **outcome)


def log_unexpected(error: BaseException) -> None:
    """A failure that is not the user's is our bug: its traceback goes to the log, which the app keeps."""
    if not isinstance(error, StarchatError):
        traceback.print_exception(error, file=sys.stderr)
        sys.stderr.flush()


def serve() -> None:
    # The protocol owns the real stdout; anything a library prints goes to stderr (the log) instead.
    channel = Channel(os.fdopen(os.dup(1), "wb"))
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Ctrl+C in the terminal is the app's to handle; this process ends when the app closes stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = Worker(channel)
    requests = sys.stdin.buffer
    while True:
        try:
            request = read_message(requests)
        except ValueError as error:  # a garbled line is the app's bug; say so in the log and go on
            print(f"starchat-tui engine: unreadable request: {error}", file=sys.stderr, flush=True)
            continue
        if request is None:
            break
        worker.handle(request)
    if worker.engine is not None:
        worker.engine.cancel()
    sys.stderr.flush()
    # No interpreter shutdown: a decode thread still inside torch would abort the process on the way out.
    os._exit(0)


if __name__ == "__main__":
    serve()
