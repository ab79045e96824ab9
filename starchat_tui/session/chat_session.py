"""The chat as data: one conversation, its settings, and saving it as it happens.

Every front-end (the full-screen app, line mode, print mode) changes the conversation through this class,
so the rules live in one place: a user message is saved the moment it is sent, an answer is saved while it
streams (at least once a second) and when it ends, and nothing is deleted that the user did not ask to
remove. A session row is created at the first message, so opening the app and quitting leaves no empty
session behind. A chat without a store (print mode) keeps the same rules in memory only.

No widgets, no terminal and no model code here: the engine is handed in as a :class:`ChatEngine`.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chat.attachments import Attachment
from ..chat.conversation import SUMMARY_INTRO, Conversation, is_summary
from ..errors import UsageError

if TYPE_CHECKING:
    from ..config import Settings
    from ..engine.protocol import ChatEngine
    from ..engine.render import PromptRenderer
    from ..store.sessions import SessionStore

SAVE_INTERVAL = 0.5  # s between saves of a streaming answer; the promise to users is "at least once a second"


@dataclass(frozen=True)
class Applied:
    """One /apply, as /undo needs it: the file and its text before (None: /apply created it) and after."""

    path: Path
    before: str | None
    after: str
    block: int


NOTHING_TO_COMPACT = ("nothing to compact: /compact summarises the turns before the last one, and there are none "
                      "that are not summarised already")
COMPACT_INSTRUCTION = (
    "Summarise the conversation below between a user and an assistant, for the assistant to carry on from "
    "it: keep the user's goals, what was decided, the names of files, functions and variables, and any "
    "code still being worked on. Write only the summary, in a few short paragraphs."
)


@dataclass(frozen=True)
class ContextUse:
    """How much of the model's context the next prompt takes, pending attachments included."""

    tokens: int
    limit: int  # the model's context
    budget: int  # what the prompt may take: the limit less the room kept for the reply
    left_out: int = 0  # oldest turns the model will not see, because the conversation outgrew the budget

    @property
    def fits(self) -> bool:
        return self.tokens <= self.budget

    @property
    def share(self) -> float:
        return self.tokens / self.limit if self.limit else 0.0

    def short(self) -> str:
        """``ctx 1.2k/8k``, and how many turns are left out when some are, for a status line."""
        text = f"ctx {_thousands(self.tokens)}/{_thousands(self.limit)}"
        return text + (f" · {self.left_out} old turn(s) left out" if self.left_out else "")


def _thousands(n: int) -> str:
    if n < 1000:
        return str(n)
    text = f"{n / 1000:.1f}".removesuffix(".0")
    return f"{text}k"


class ChatSession:
    """A conversation, its model name, system prompt and generation settings, saved to a store."""

    def __init__(
        self,
        store: SessionStore | None,
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
        self.attachments: list[Attachment] = []  # go with the next message sent
        # The folder the chat started in: with the git root above it, the project /apply writes in unasked.
        self.folder = Path.cwd()
        self.files: dict[str, Attachment] = {}  # every file attached in this chat, by resolved path, as read then
        self.applied: list[Applied] = []  # what /undo puts back, the last /apply last
        self.editing: int | None = None  # index of the user message being edited: sending replaces it
        self.last_reply: dict[str, Any] | None = None  # what the last reply() left in the conversation
        self.summarising = False  # compact() is using the engine: a front-end sends nothing meanwhile
        self._reply_id: int | None = None
        self._last_save = 0.0

    @classmethod
    def open(
        cls,
        store: SessionStore,
        session_id: str,
        settings: Settings | None = None,
        overrides: Collection[str] = (),
    ) -> ChatSession:
        """A saved session (an ID or a unique prefix), continued.

        Its model, system prompt and generation settings are kept, except those named in ``overrides``
        ("model", "system", "generation"): the user gave those on the command line, so they come from
        ``settings`` and are saved with the session.
        """
        session = store.get_session(session_id)
        chat = cls(
            store, model=session.model, options=session.settings, session_id=session.id,
            conversation=store.conversation(session.id),
        )
        if settings is not None:
            if "model" in overrides and settings.model != chat.model:
                chat.set_model(settings.model)
            if "system" in overrides:
                chat.set_system(settings.system)
            if "generation" in overrides:
                chat.replace_options({**chat.options, **settings.generation})
        return chat

    @classmethod
    def choose(
        cls,
        store: SessionStore,
        settings: Settings,
        *,
        session_id: str | None = None,
        continue_last: bool = False,
        overrides: Collection[str] = (),
    ) -> ChatSession:
        """The chat a front-end opens with: a given session, the last one (``-c``), or a new one."""
        auto_compact_share(settings)  # a bad [chat] auto_compact is refused at start, not after the first answer
        if continue_last:
            last = store.last_session()
            if last is None:
                raise UsageError("no saved session to continue: start a chat first (without -c)")
            session_id = last.id
        if session_id:
            return cls.open(store, session_id, settings, overrides)
        return cls(store, model=settings.model, system=settings.system, options=settings.generation)

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

    def turns(self) -> list[tuple[int, str]]:
        """(number, first line) of each user message, for choosing a turn."""
        turns: list[tuple[int, str]] = []
        for message in self.messages:
            if message["role"] == "user":
                first = message["content"].strip().splitlines()[0] if message["content"].strip() else ""
                turns.append((len(turns) + 1, first[:80]))
        return turns

    def answers(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["role"] == "assistant" and not is_summary(m)]

    def resolved_options(self) -> dict[str, Any]:
        from ..engine.generation import resolve_generation_options

        return resolve_generation_options(self.options)

    def context_use(self, renderer: PromptRenderer, draft: str = "") -> ContextUse:
        """The tokens the next prompt takes: the conversation as the model sees it, plus ``draft`` and the
        pending attachments as they would be sent (whole: :meth:`compose` cuts them only when sending)."""
        from ..chat.attachments import compose_prompt

        messages = self.conversation.for_model()
        max_new_tokens = self.resolved_options()["max_new_tokens"]
        budget = renderer.prompt_budget(max_new_tokens)
        tokens = renderer.count_messages(messages)
        left_out = 0
        # Only the conversation's own overflow drops turns: attachments that do not fit are cut when sent.
        if tokens > budget and messages:
            try:
                left_out = renderer.fit(messages, max_new_tokens).dropped_turns
            except UsageError:  # even the newest turn alone does not fit; sending says so
                left_out = 0
        if draft.strip() or self.attachments:
            tokens = renderer.count_messages([*messages, {"role": "user", "content": compose_prompt(draft, self.attachments)}])
        return ContextUse(tokens, renderer.context_limit, budget, left_out)

    # -- saving ----------------------------------------------------------------------------------------

    def _ensure_saved(self) -> str | None:
        if self.session_id is None and self.store is not None:
            session = self.store.create_session(self.model, self.system, self.options)
            self.session_id = session.id
        return self.session_id

    def compose(self, renderer: PromptRenderer, text: str) -> tuple[str, list[str]]:
        """The message to send for ``text``, with the pending attachments cut to fit the context.

        Returns the message and one line for each attachment that had to be cut. The attachments are
        used up only when they fit; on an error they stay pending and nothing is lost.
        """
        if not self.attachments:
            return text, []
        from ..engine.render import fit_attachments

        content, cuts = fit_attachments(renderer, self.conversation, text, self.attachments,
                                        self.resolved_options()["max_new_tokens"])
        self.files.update({a.path: a for a in self.attachments if a.path})
        self.attachments = []
        return content, cuts

    def attach(self, attachment: Attachment) -> None:
        """Add an attachment to the next message; the same file attached again replaces the pending copy."""
        self.attachments = [a for a in self.attachments if not (attachment.path and a.path == attachment.path)]
        self.attachments.append(attachment)
        if attachment.path:
            self.files[attachment.path] = attachment

    def known_file(self, path: Path) -> Attachment | None:
        """The attachment ``path`` was last read into, pending or sent; None when it was never attached."""
        key = str(path)
        pending = [a for a in self.attachments if a.path == key]
        return pending[-1] if pending else self.files.get(key)

    def add_user(self, content: str) -> None:
        """Add and save a user message at once; while editing, it replaces the edited one and what followed."""
        if self.editing is not None:
            self._truncate(self.editing)
            self.editing = None
        session_id = self._ensure_saved()
        if self.store is not None and session_id is not None:
            self.store.add_message(session_id, "user", content)
        self.conversation.add("user", content)

    def reply(self, engine: ChatEngine) -> Generator[str, None, None]:
        """Stream ``engine``'s answer to the conversation as it stands, saving it as it grows.

        This is the one stream-and-save loop of every front-end. The answer is saved at once as an
        unfinished message, again at least every :data:`SAVE_INTERVAL` while it streams, and whole when it
        ends. A consumer that stops reading (Ctrl+C in a script) or an engine that is cancelled leaves the
        answer marked interrupted; a failed generation keeps what did stream, marked interrupted, and the
        error reaches the consumer. :attr:`last_reply` is the answer as saved, or None when none came.
        """
        options = self.resolved_options()
        self.last_reply = None
        self._start_reply()
        pieces: list[str] = []
        error: BaseException | None = None
        stream = engine.stream(self.conversation, **options)
        try:
            for text in stream:
                pieces.append(text)
                self._save_progress(pieces)
                yield text
        except GeneratorExit:
            raise  # the consumer stopped reading: the engine marks the answer interrupted
        except BaseException as caught:
            error = caught
            raise
        finally:
            stream.close()  # before the answer is read back, so the engine has appended it
            self.last_reply = self._finish_reply("".join(pieces), error)

    def _start_reply(self) -> None:
        session_id = self._ensure_saved()
        if self.store is not None and session_id is not None:
            self._reply_id = self.store.add_message(session_id, "assistant", "", final=False)
        self._last_save = time.monotonic()

    def _save_progress(self, pieces: list[str]) -> None:
        now = time.monotonic()
        if self._reply_id is not None and self.store is not None and now - self._last_save >= SAVE_INTERVAL:
            self.store.update_message(self._reply_id, "".join(pieces))
            self._last_save = now

    def _finish_reply(self, streamed: str, error: BaseException | None) -> dict[str, Any] | None:
        """The stream ended; save the answer as the conversation now holds it and return it.

        The engine appends the reply to the conversation itself. When generation failed it appends
        nothing: text that did stream is kept as an interrupted answer, and an empty one is removed.
        """
        reply_id, self._reply_id = self._reply_id, None
        messages = self.conversation.messages
        reply = messages[-1] if messages and messages[-1]["role"] == "assistant" and error is None else None
        if reply is None and streamed:
            reply = self.conversation.add("assistant", streamed, interrupted=True)
        if reply_id is None or self.store is None or self.session_id is None:
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
        if self.session_id is not None and self.store is not None:
            self.store.truncate(self.session_id, keep)

    def drop_last_reply(self) -> int:
        """Remove the last answer so it can be generated again; returns the index it had.

        With no answer after the last user message there is nothing to drop and the index is where
        the new answer will go.
        """
        messages = self.messages
        if not messages:
            raise UsageError("nothing to regenerate: send a message first")
        if is_summary(messages[-1]):
            raise UsageError("nothing to regenerate since /compact: send a message (or /edit the last one)")
        if messages[-1]["role"] == "assistant":
            self._truncate(len(messages) - 1)
        return len(self.messages)

    def begin_edit(self) -> str:
        """Mark the last user message as being edited and return its text; sending replaces it."""
        users = [i for i, m in enumerate(self.messages) if m["role"] == "user"]
        if not users:
            raise UsageError("no message to edit yet: send one first")
        self.editing = users[-1]
        return str(self.messages[users[-1]]["content"])

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
        if self.session_id is None or self.store is None or not self.messages:
            raise UsageError("nothing to fork yet: send a message first")
        upto = len(self.messages) if turn is None else self.message_count_through_turn(turn)
        forked = self.store.fork(self.session_id, upto)
        return ChatSession.open(self.store, forked.id)

    def compact_covers(self, keep_turns: int = 1) -> int | None:
        """How many messages a summary keeping the last ``keep_turns`` would cover; None when it would add nothing."""
        users = [index for index, message in enumerate(self.messages) if message["role"] == "user"]
        done = max((int(m.get("covers", 0)) for m in self.messages if is_summary(m)), default=0)
        if len(users) <= keep_turns or users[-keep_turns] <= done:
            return None
        return users[-keep_turns]

    def _older_view(self, covers: int) -> list[dict[str, Any]]:
        """What the model sees of the first ``covers`` messages: what a summary of them must stand in for."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        return Conversation.from_messages(system + self.messages[:covers]).for_model()

    def compact_due(self, renderer: PromptRenderer, share: float | None) -> ContextUse | None:
        """The context use, when the chat should compact on its own: the prompt is past ``share`` of its budget,
        and the turns to summarise are longer than the longest summary could be, so it is sure to help."""
        covers = self.compact_covers(1)
        if share is None or covers is None:
            return None
        use = self.context_use(renderer)
        if use.tokens <= share * use.budget:
            return None
        longest = self.resolved_options()["max_new_tokens"] + renderer.count_tokens(SUMMARY_INTRO)
        return use if renderer.count_messages(self._older_view(covers)) > longest else None

    def compact(self, engine: ChatEngine, keep_turns: int = 1) -> tuple[dict[str, Any], list[str]]:
        """Have the model summarise every turn but the last ``keep_turns``; the summary stands in for them.

        The summary is saved as an assistant message flagged ``summary``, with ``covers``: how many messages
        before it the model no longer sees (:meth:`Conversation.for_model`). Nothing is removed, so the store,
        exports and the screen keep the whole chat. Returns the summary and a line for anything cut to fit
        the summarising prompt. The summary is asked for through the one stream loop, on a scratch chat.
        """
        from ..chat.attachments import Attachment

        covers = self.compact_covers(keep_turns)
        if covers is None:
            raise UsageError(NOTHING_TO_COMPACT)
        older = self._older_view(covers)
        transcript = "\n\n".join(f"{m['role'].upper()}: {m['content']}" for m in older)
        scratch = ChatSession(None, model=self.model, options=self.options)
        scratch.attachments = [Attachment("the conversation", transcript, fence_language="")]
        content, cuts = scratch.compose(engine.renderer, COMPACT_INSTRUCTION)
        scratch.add_user(content)
        self.summarising = True
        try:
            for _ in scratch.reply(engine):
                pass
        finally:
            self.summarising = False
        reply = scratch.last_reply
        if reply is None or reply.get("interrupted") or not reply["content"].strip():
            raise UsageError("no summary came (it was stopped, or the model wrote nothing): the chat is unchanged")
        summary: dict[str, Any] = {"role": "assistant", "content": reply["content"].strip(), "summary": True,
                                   "covers": covers}
        # A summary longer than what it replaces would only cost context: keep the turns as they are.
        before = engine.renderer.count_messages(self.conversation.for_model())
        after = engine.renderer.count_messages(Conversation.from_messages([*self.conversation.messages, summary]).for_model())
        if after >= before:
            raise UsageError(f"the summary would make the prompt longer ({before} → {after} tokens), not shorter: "
                             "the chat is unchanged; /compact helps once the older turns are long")
        session_id = self._ensure_saved()
        if self.store is not None and session_id is not None:
            self.store.add_message(session_id, "assistant", summary["content"], summary=True, covers=covers)
        return self.conversation.add("assistant", summary["content"], summary=True, covers=covers), cuts

    def fresh(self) -> ChatSession:
        """An empty chat with the same model, system prompt and settings (saved at its first message)."""
        chat = ChatSession(self.store, model=self.model, system=self.system, options=self.options)
        chat.folder = self.folder
        return chat

    def set_system(self, text: str | None) -> None:
        self.conversation.system = text or None
        if self.session_id is not None and self.store is not None:
            self.store.set_system(self.session_id, text or None)

    def set_option(self, key: str, value: Any) -> None:
        """Set (or with value None, reset) one generation setting, validated before it is kept."""
        options = dict(self.options)
        if value is None:
            options.pop(key, None)
        else:
            options[key] = value
        self.replace_options(options)

    def replace_options(self, options: dict[str, Any]) -> None:
        from ..engine.generation import resolve_generation_options

        resolve_generation_options(options)  # a one-line UsageError on a bad key or value
        self.options = dict(options)
        if self.session_id is not None and self.store is not None:
            self.store.set_settings(self.session_id, self.options)

    def set_model(self, model: str) -> None:
        self.model = model
        if self.session_id is not None and self.store is not None:
            self.store.set_model(self.session_id, model)


def auto_compact_share(settings: Settings) -> float | None:
    """config.toml's ``[chat] auto_compact``: the share of the prompt budget past which a chat compacts itself
    after an answer; None (the default) leaves it to /compact."""
    value = settings.section("chat").get("auto_compact")
    if value is None or value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise UsageError(f"config.toml: [chat] auto_compact = {value!r}: give a share of the context between 0 and 1, "
                         "for example 0.8, or leave it out")
    return float(value)


def parse_settings_text(text: str) -> dict[str, Any]:
    """Generation settings written one ``KEY = VALUE`` a line (# comments and blank lines allowed)."""
    from ..config import parse_value

    options: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"line {number}: expected KEY = VALUE, for example temperature = 0.2")
        options[key.strip()] = parse_value(value.strip().strip("'\""))
    return options
