"""A conversation: an ordered list of ``{"role", "content"}`` messages, system message first.

The JSON form is the datasets "messages" format, ``{"messages": [...]}``, so a saved conversation is
training data as it is. Messages may carry extra keys (``"interrupted": True`` on a reply that was
stopped); the template ignores them and the JSON keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

ROLES = ("system", "user", "assistant")
# Put before a /compact summary where the model sees it: in the system message, which every template has.
SUMMARY_INTRO = "A summary of the earlier conversation, which the user and you had before the messages below:"


def is_summary(message: Mapping[str, Any]) -> bool:
    """A summary written by /compact: saved as an assistant message, seen by the model in place of the
    ``covers`` messages before it; it is not an answer to anything."""
    return message.get("role") == "assistant" and bool(message.get("summary"))


class Conversation:
    """A multi-turn dialogue with an optional system message."""

    def __init__(self, system: str | None = None) -> None:
        self._messages: list[dict[str, Any]] = []
        if system:
            self._messages.append({"role": "system", "content": system})

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The live message list, system message first when set."""
        return self._messages

    @property
    def system(self) -> str | None:
        if self._messages and self._messages[0]["role"] == "system":
            return self._messages[0]["content"]
        return None

    @system.setter
    def system(self, text: str | None) -> None:
        has_system = bool(self._messages) and self._messages[0]["role"] == "system"
        if text:
            if has_system:
                self._messages[0]["content"] = text
            else:
                self._messages.insert(0, {"role": "system", "content": text})
        elif has_system:
            del self._messages[0]

    def for_model(self) -> list[dict[str, Any]]:
        """The messages as the model sees them: the latest summary stands in for the messages it covers.

        :attr:`messages` keeps every message, so the store, exports and the screen still have the whole
        chat; only the prompt is shorter. Without a summary this is :attr:`messages` as they are.
        """
        body = [m for m in self._messages if m["role"] != "system"]
        latest = next((m for m in reversed(body) if is_summary(m)), None)
        if latest is None:
            return list(self._messages)
        kept = [m for m in body[int(latest.get("covers", 0)):] if not is_summary(m)]
        summary = f"{SUMMARY_INTRO}\n\n{latest['content']}"
        system = self.system
        return [{"role": "system", "content": f"{system}\n\n{summary}" if system else summary}, *kept]

    def add(self, role: str, content: str, **extra: Any) -> dict[str, Any]:
        """Append a message and return it. A system message may only come first."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise TypeError(f"message content must be str, not {type(content).__name__}")
        if role == "system" and self._messages:
            raise ValueError("a system message can only be the first message; set .system instead")
        message = {"role": role, "content": content, **extra}
        self._messages.append(message)
        return message

    @classmethod
    def from_messages(cls, messages: Iterable[Mapping[str, Any]]) -> Conversation:
        conversation = cls()
        for message in messages:
            extra = {k: v for k, v in message.items() if k not in ("role", "content")}
            conversation.add(message["role"], message["content"], **extra)
        return conversation

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {"messages": [dict(m) for m in self._messages]}

    def to_json(self, **dumps_kwargs: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **dumps_kwargs)

    @classmethod
    def from_json(cls, text: str) -> Conversation:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
            raise ValueError('expected a JSON object of the form {"messages": [...]}')
        return cls.from_messages(data["messages"])

    def copy(self) -> Conversation:
        return Conversation.from_messages(self._messages)

    def __len__(self) -> int:
        return len(self._messages)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Conversation) and other._messages == self._messages

    def __repr__(self) -> str:
        return f"Conversation({len(self._messages)} messages)"
