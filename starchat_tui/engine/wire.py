"""What the chat app and its engine process say to each other: one JSON object per line.

JSON, not pickle, so a line in a log or a test can be read by eye, and a message that is not plain data
fails at the sender. Errors cross as their class name and message and come back as the same class when
it is one of ours or a builtin, so the app words them as it would for an engine in its own process.
"""

from __future__ import annotations

import builtins
import json
import threading
from typing import IO, Any

from .. import errors


class Channel:
    """Writes messages to a binary stream, one line each; safe to share between threads."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, op: str, **fields: Any) -> None:
        line = json.dumps({"op": op, **fields}, ensure_ascii=False).encode() + b"\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()

    def close(self) -> None:
        with self._lock:
            try:
                self._stream.close()
            except OSError:
                pass


def read_message(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message, or None when the other side has closed the stream."""
    line = stream.readline()
    if not line:
        return None
    return json.loads(line)


def error_to_wire(error: BaseException) -> dict[str, str]:
    return {"type": type(error).__name__, "message": str(error)}


def error_from_wire(fields: dict[str, str]) -> Exception:
    """The exception the engine raised, as our class or a builtin of the same name, else a RuntimeError."""
    name, message = fields.get("type", "RuntimeError"), fields.get("message", "")
    ours = getattr(errors, name, None)
    if isinstance(ours, type) and issubclass(ours, errors.StarchatError):
        return ours(message)
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception) and not issubclass(builtin, OSError):
        try:
            return builtin(message)
        except TypeError:  # a builtin whose constructor wants more than a message
            pass
    return RuntimeError(f"{name}: {message}")
