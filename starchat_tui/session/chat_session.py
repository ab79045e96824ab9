"""The chat as data: one conversation, its settings, and saving it as it happens.

The chat screen asks this class to change the conversation and it keeps the session store in step, so the
rules live in one place: a user message is saved the moment it is sent, an answer is saved while it
streams (at least once a second) and when it ends, and nothing is deleted that the user did not ask to
remove. A session row is created at the first message, so opening the app and quitting leaves no
empty session behind. No widgets and no model here.
"""

from __future__ import annotations

import time
from typing import Any

from ..chat.conversation import Conversation
from ..errors import UsageError

SAVE_INTERVAL = 0.5  # s between saves of a streaming answer; the promise to users is "at least once a second"


class ChatSession:
    """A conversation, its model name, system prompt and generation settings, saved to a store."""

    def __init__(
        self,
        store: Any,
        *,
        model: str,
        system: str | None = None,
        options: dict[str, Any] | None = None,
        session_id: str | None = None,
        conversation: Conversation | None = None,
    ) -> None:
        self.store = store
        self.model = model
        self.options: dict[str, Any] = dict(options or {})
        self.session_id = session_id
        self.conversation = conversation if conversation is not None else Conversation(system=system)
        self._reply_id: int | None = None
        self._last_save = 0.0

    @classmethod
    def open(cls, store: Any, session_id: str) -> ChatSession:
        """A saved session, continued."""
        session = store.get_session(session_id)
        return cls(
            store, model=session.model, options=session.settings, session_id=session.id,
            conversation=store.conversation(session.id),
        )

    # -- reading ---------------------------------------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """User and assistant messages (no system message), as the store numbers them."""
        return [m for m in self.conversation.messages if m["role"] != "system"]

    @property
    def system(self) -> str | None:
        return self.conversation.system

    def turn_count(self) -> int:
        return sum(1 for m in self.messages if m["role"] == "user")

    def resolved_options(self) -> dict[str, Any]:
        from ..engine.generation import resolve_generation_options

        return resolve_generation_options(self.options)

    # -- saving ----------------------------------------------------------------------------------------

    def _ensure_saved(self) -> str:
        if self.session_id is None:
            session = self.store.create_session(self.model, self.system, self.options)
            self.session_id = session.id
        return self.session_id

    def add_user(self, content: str) -> None:
        """Add and save a user message at once."""
        session_id = self._ensure_saved()
        self.store.add_message(session_id, "user", content)
        self.conversation.add("user", content)

    def start_reply(self) -> None:
        """An answer begins: save an empty, unfinished message that the stream will fill in."""
        self._reply_id = self.store.add_message(self._ensure_saved(), "assistant", "", final=False)
        self._last_save = time.monotonic()

    def reply_progress(self, text: str) -> None:
        """The answer so far; saved when the last save is older than :data:`SAVE_INTERVAL`."""
        now = time.monotonic()
        if self._reply_id is not None and now - self._last_save >= SAVE_INTERVAL:
            self.store.update_message(self._reply_id, text)
            self._last_save = now

    def finish_reply(self, streamed: str, error: BaseException | None) -> dict[str, Any] | None:
        """The stream ended; save the answer as the conversation now holds it and return it.

        The engine appends the reply to the conversation itself. When generation failed it appends
        nothing: text that did stream is kept as an interrupted answer, and an empty one is removed.
        """
        reply_id, self._reply_id = self._reply_id, None
        messages = self.conversation.messages
        reply = messages[-1] if messages and messages[-1]["role"] == "assistant" and error is None else None
        if reply is None and streamed:
            reply = self.conversation.add("assistant", streamed, interrupted=True)
        if reply_id is None:
            return reply
        if reply is None:
            self.store.truncate(self.session_id, len(self.messages))
        else:
            self.store.update_message(reply_id, reply["content"], interrupted=bool(reply.get("interrupted")), final=True)
        return reply

    # -- changing the conversation ---------------------------------------------------------------------

    def _truncate(self, keep: int) -> None:
        """Keep the first ``keep`` user/assistant messages, in memory and in the store."""
        system = self.system
        kept = self.messages[:keep]
        self.conversation.messages[:] = ([{"role": "system", "content": system}] if system else []) + kept
        if self.session_id is not None:
            self.store.truncate(self.session_id, keep)

    def drop_last_reply(self) -> int:
        """Remove the last answer so it can be generated again; returns the index it had.

        With no answer after the last user message there is nothing to drop and the index is where
        the new answer will go.
        """
        messages = self.messages
        if not messages:
            raise UsageError("nothing to regenerate: send a message first")
        if messages[-1]["role"] == "assistant":
            self._truncate(len(messages) - 1)
        return len(self.messages)

    def take_last_user(self) -> tuple[int, str]:
        """Remove the last user message and everything after it; returns its index and its text."""
        messages = self.messages
        index = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
        if index is None:
            raise UsageError("no message to edit yet: send one first")
        text = messages[index]["content"]
        self._truncate(index)
        return index, text

    def message_count_through_turn(self, turn: int) -> int:
        """How many messages turns 1..``turn`` hold (a turn is a user message and its answers)."""
        if not 1 <= turn <= self.turn_count():
            raise UsageError(f"no turn {turn}: this chat has {self.turn_count()} turn(s); use /fork 1..{self.turn_count()}")
        seen = 0
        for index, message in enumerate(self.messages):
            if message["role"] == "user":
                seen += 1
                if seen == turn + 1:
                    return index
        return len(self.messages)

    def fork(self, turn: int | None = None) -> ChatSession:
        """A new saved session holding this chat up to the end of ``turn`` (default: all of it)."""
        if self.session_id is None or not self.messages:
            raise UsageError("nothing to fork yet: send a message first")
        upto = len(self.messages) if turn is None else self.message_count_through_turn(turn)
        forked = self.store.fork(self.session_id, upto)
        return ChatSession.open(self.store, forked.id)

    def fresh(self) -> ChatSession:
        """An empty chat with the same model, system prompt and settings (saved at its first message)."""
        return ChatSession(self.store, model=self.model, system=self.system, options=self.options)

    def set_system(self, text: str | None) -> None:
        self.conversation.system = text or None
        if self.session_id is not None:
            self.store.set_system(self.session_id, text or None)

    def set_option(self, key: str, value: Any) -> None:
        """Set (or with value None, reset) one generation setting, validated before it is kept."""
        from ..engine.generation import resolve_generation_options

        options = dict(self.options)
        if value is None:
            options.pop(key, None)
        else:
            options[key] = value
        resolve_generation_options(options)
        self.options = options
        if self.session_id is not None:
            self.store.set_settings(self.session_id, options)

    def replace_options(self, options: dict[str, Any]) -> None:
        from ..engine.generation import resolve_generation_options

        resolve_generation_options(options)
        self.options = dict(options)
        if self.session_id is not None:
            self.store.set_settings(self.session_id, self.options)

    def set_model(self, model: str) -> None:
        self.model = model
        if self.session_id is not None:
            self.store.set_model(self.session_id, model)
