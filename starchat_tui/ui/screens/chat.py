"""The chat screen: transcript, prompt and status line, its keys and events, and the answer streaming in.

The conversation lives in :class:`~starchat_tui.session.chat_session.ChatSession` (which saves it), and the
slash commands in :mod:`starchat_tui.session.commands`, which reach this screen through
:class:`~starchat_tui.ui.screens.front.ScreenFront`. Generation runs on a worker thread that only hands text
to a buffer; the screen paints from the buffer at its own pace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static, TextArea

from ...chat.attachments import Attachment
from ...chat.blocks import blocks_before, blocks_in
from ...chat.conversation import is_summary
from ...chat.inert import make_inert
from ...clipboard import copy_text
from ...errors import StarchatError, UsageError
from ...session import commands
from ...session.chat_session import ChatSession
from ...session.code_runs import CodeRunner
from ...session.workspace import attach_mentions, describe
from .. import keymap
from ..feeder import StreamFeeder, TokenBuffer
from ..widgets.answer import AssistantMessage
from ..widgets.code_fence import CodeFence
from ..widgets.messages import NoteMessage, UserMessage
from ..widgets.prompt import CompletionMenu, PromptInput
from ..widgets.status import StatusLine
from ..widgets.tool_result import ToolResult
from ..widgets.transcript import Transcript
from .front import ScreenFront
from .picker import PickerScreen
from .plain import PlainNotify

if TYPE_CHECKING:
    from ...config import Settings
    from ...engine.protocol import ChatEngine
    from ..app import StarchatApp

T = TypeVar("T")

WELCOME = (
    "Ask about code. Enter sends · Ctrl+J or Alt+Enter adds a line · Esc stops an answer · "
    "/ for commands · Ctrl+P for every action · F1 for keys"
)


class ChatScreen(ScreenFront, PlainNotify, Screen):
    """One chat at a time; switching sessions replaces what it shows."""

    BINDINGS = [*keymap.bindings("chat"), Binding("escape", "cancel_edit", "Cancel edit", show=False)]

    generating: var[bool] = var(False)

    def __init__(
        self,
        chat: ChatSession,
        *,
        attachments: list[Attachment] | None = None,
        instruction: str = "",
        send_first: bool = False,
    ) -> None:
        super().__init__(id="chat-screen")
        self.chat = chat
        self.chat.attachments = list(attachments or [])
        self.instruction = instruction
        self.send_first = send_first
        self.code_runner = CodeRunner()
        self._draft_before_edit = ""
        self._entry_of: list[int] = []  # message index -> transcript entry index
        self._entry_count = 0
        self._waiting: str | None = None  # a message (or "" to only generate) waiting for the model
        self._queued: list[str] = []  # messages typed ahead while an answer streams, sent after it in order
        self._answers_started = 0
        # Built here, not in compose, so the app can report loading progress before the screen mounts.
        self.transcript = Transcript()
        self.menu = CompletionMenu()
        self.prompt = PromptInput(history=self._prompt_history())
        self.prompt.menu = self.menu
        self.prompt.accepts = self._accepts
        self.status_line = StatusLine()
        # Set once the first chat is on screen: a note that arrives earlier (a model that fails to load in
        # an instant) would otherwise be wiped when the transcript is first filled.
        self._shown = asyncio.Event()

    # -- layout ----------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self.transcript
        with Vertical(id="composer"):
            yield Static("", id="attachments", markup=False)
            yield self.menu
            yield self.prompt
        yield self.status_line
        yield Footer()

    @property
    def starchat(self) -> StarchatApp:
        from ..app import StarchatApp

        app = self.app
        assert isinstance(app, StarchatApp)
        return app

    @property
    def settings(self) -> Settings:  # type: ignore[override]  # Front's settings, not Screen's
        return self.starchat.settings

    @property
    def engine(self) -> ChatEngine | None:
        return self.starchat.engine

    @property
    def busy(self) -> bool:
        return self.generating

    @property
    def editing(self) -> int | None:
        return self.chat.editing

    @property
    def attachments(self) -> list[Attachment]:
        return self.chat.attachments

    def _prompt_history(self) -> list[str]:
        try:
            return self.chat.store.prompts() if self.chat.store is not None else []
        except Exception:  # history is a convenience; a broken one must not stop the chat
            return []

    async def on_mount(self) -> None:
        self._show_attachments()
        await self.show_chat_now(self.chat)
        self._shown.set()
        self.prompt.focus()
        if self.instruction and not self.send_first:
            self.prompt.recall(self.instruction)
        elif self.send_first:
            self.run_worker(self.send(self.instruction), group="send")

    # -- engine state (called by the app) --------------------------------------------------------------

    def engine_progress(self, step: str) -> None:
        self.status_line.error = ""
        self.status_line.loading_step = step

    async def engine_ready(self, engine: ChatEngine) -> None:
        status = self.status_line
        status.loading_step = ""
        status.error = ""
        status.model, status.device, status.dtype = Path(engine.model_name).name or engine.model_name, engine.device, engine.dtype
        self.count_context()
        self._show_attachments()  # the token counts were estimates until the tokenizer was in
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            # A callable, not a coroutine: a worker that never starts (the app is closing) then leaves nothing
            # un-awaited behind.
            self.run_worker(partial(self.send, waiting) if waiting else self.generate_now, group="send")

    def engine_failed(self, message: str) -> None:
        self.status_line.loading_step = ""
        self.status_line.error = message
        self.run_worker(partial(self.add_note, f"{message}\nLoad another with /model NAME.", "error"))

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def count_context(self) -> None:
        """Measure the context the next prompt fills, off the UI thread (tokenizing can take a while)."""
        engine = self.engine
        if engine is None:
            return
        use = self.chat.context_use(engine.renderer)
        self.app.call_from_thread(setattr, self.status_line, "context", use)

    # -- showing a chat --------------------------------------------------------------------------------

    async def show_chat_now(self, chat: ChatSession, note: str = "") -> None:
        """Show ``chat`` from scratch (at start, after opening, forking or clearing)."""
        if chat is not self.chat:  # attachments waiting to be sent go with the user to the new chat
            chat.attachments = self.chat.attachments
        self.chat = chat
        factories: list[Callable[[], Widget]] = []
        self._entry_of = []
        if chat.system:
            first = chat.system.strip().splitlines()[0] if chat.system.strip() else ""
            factories.append(partial(NoteMessage, f"system prompt: {first}" + (" …" if "\n" in chat.system.strip() else ""),
                                     kind="system"))
        if not chat.messages:
            factories.append(partial(NoteMessage, WELCOME, kind="welcome"))
        turn = 0
        first_block = 1
        for message in chat.messages:
            self._entry_of.append(len(factories))
            if message["role"] == "user":
                turn += 1
                factories.append(partial(UserMessage, message["content"], turn=turn))
            elif is_summary(message):
                factories.append(partial(NoteMessage, f"summary (/compact): the model sees this in place of the "
                                         f"turns before turn {turn}\n\n{message['content']}", kind="system"))
            else:
                factories.append(partial(
                    AssistantMessage, message["content"], title=self._answer_title(), first_block=first_block,
                    interrupted=bool(message.get("interrupted")),
                ))
                first_block += len(blocks_in(message["content"]))
        self._entry_count = len(factories)
        await self.transcript.show(factories)
        self.status_line.session = chat.session_id or "new"
        self.status_line.tokens_per_s = 0.0
        self.status_line.cached_tokens = 0
        self.count_context()
        if note:
            await self.add_note(note)

    def _answer_title(self) -> str:
        engine = self.engine
        name = engine.model_name if engine is not None else self.chat.model
        return Path(name).name or name

    async def _add_entry(self, factory: Callable[[], Widget], *, message_index: int | None = None) -> Widget:
        if message_index is not None:
            del self._entry_of[message_index:]
            self._entry_of.append(self._entry_count)
        self._entry_count += 1
        return await self.transcript.add(factory)

    async def _remove_messages_from(self, message_index: int) -> None:
        if message_index < len(self._entry_of):
            entry = self._entry_of[message_index]
            await self.transcript.remove_from(entry)
            del self._entry_of[message_index:]
            self._entry_count = entry

    async def add_note(self, text: str, kind: str = "info") -> None:
        await self._shown.wait()
        await self._add_entry(partial(NoteMessage, text, kind=kind))

    def _show_attachments(self) -> None:
        self.count_context()  # what they take is shown before they are sent
        bar = self.query_one("#attachments", Static)
        if not self.chat.attachments:
            bar.display = False
            return
        described = ", ".join(describe(self, a) for a in self.chat.attachments)
        bar.update(f"📎 attached: {described}: sent with your next message (/drop removes)")
        bar.display = True

    # -- sending and answering -------------------------------------------------------------------------

    def _accepts(self, text: str) -> bool:
        if self.chat.summarising and not commands.is_command(text):
            self.notify("Still summarising (/compact): press Esc to stop it, then send.", severity="warning")
            return False
        return True  # while an answer streams, a message is queued (see on_prompt_submitted)

    @on(PromptInput.Submitted)
    async def on_prompt_submitted(self, event: PromptInput.Submitted) -> None:
        if commands.is_command(event.text):
            self._remember_prompt(event.text)
            self.run_command(event.text)
        elif self.generating:
            self._remember_prompt(event.text)
            self._queued.append(event.text)
            first_line = event.text.strip().splitlines()[0]
            shown = first_line if len(first_line) <= 60 else first_line[:59] + "…"
            await self.add_note(f"queued: {shown} · sent when this answer ends · Esc stops it and gives the "
                                "message back")
            self.status_line.queued = len(self._queued)
        else:
            self.run_worker(self.send(event.text), group="send")

    def _give_back_queued(self) -> None:
        """Put typed-ahead messages back in the editor, before whatever is there now, and forget them."""
        if not self._queued:
            return
        draft = self.prompt.text
        self.prompt.recall("\n\n".join([*self._queued, *([draft] if draft.strip() else [])]))
        self._queued.clear()
        self.status_line.queued = 0
        self.notify("The queued message is back in the editor.")

    async def _send_queued(self) -> None:
        """Send the next typed-ahead message. ``generating`` stays set from the answer before until this one's
        answer starts, so a message typed in between is queued behind it, not sent alongside it."""
        text = self._queued.pop(0)
        self.status_line.queued = len(self._queued)
        started = self._answers_started
        try:
            await self.send(text, remember=False)
        finally:
            if self._answers_started == started:  # it never reached the model (an error note says why)
                self.generating = False

    async def send(self, text: str, *, remember: bool = True) -> None:
        """Send a message (with any attachments) and stream the answer."""
        text = commands.as_message(text)
        if text.strip() and remember:
            self._remember_prompt(text)
        editing = self.chat.editing
        if not attach_mentions(self, text):
            self.prompt.recall(text)  # a file it names could not be attached: the message waits
            return
        if self.chat.attachments:
            engine = self.engine
            if engine is None:
                await self._wait_for_engine(text)
                return
            try:
                content, cuts = self.chat.compose(engine.renderer, text)
            except UsageError as error:
                await self.add_note(str(error), "error")
                self.prompt.recall(text)
                return
            for cut in cuts:
                await self.add_note(cut, "warning")
            self._show_attachments()
        elif not text.strip():
            return
        else:
            content = text
        try:
            self.chat.add_user(content)
        except StarchatError as error:
            await self.add_note(f"could not save the message: {error}", "error")
            self.prompt.recall(text)
            return
        if editing is not None:
            await self._remove_messages_from(editing)
        self.status_line.session = self.chat.session_id or "new"
        await self._add_entry(partial(UserMessage, content, turn=self.chat.turn_count()),
                              message_index=len(self.chat.messages) - 1)
        self.transcript.follow()
        await self.generate_now()

    def _remember_prompt(self, text: str) -> None:
        try:
            if self.chat.store is not None:
                self.chat.store.add_prompt(text)
        except Exception as error:  # losing history is worth a warning, not a lost message
            self.notify(f"prompt history not saved: {error}", severity="warning")

    async def _wait_for_engine(self, text: str) -> None:
        if self._waiting is not None:
            self.notify("A message is already waiting for the model to load.", severity="warning")
            self.prompt.recall(text)
            return
        self._waiting = text
        loading = self.starchat.loading_model
        await self.add_note(
            f"waiting for {loading} to load; your message goes out as soon as it is ready" if loading
            else "no model is loaded: load one with /model NAME and your message goes out then",
        )

    async def generate_now(self) -> None:
        """Stream an answer to the conversation as it stands."""
        engine = self.engine
        if engine is None:
            if self._waiting is None:
                self._waiting = ""
                loading = self.starchat.loading_model
                await self.add_note(f"waiting for {loading} to load…" if loading
                                    else "no model is loaded: load one with /model NAME")
            return
        try:
            self.chat.resolved_options()
        except UsageError as error:
            await self.add_note(f"{error} (change it with /set)", "error")
            return
        index = len(self.chat.messages)
        await self._remove_messages_from(index)  # an answer being regenerated
        first_block = blocks_before(self.chat.messages, index) + 1
        widget = await self._add_entry(
            partial(AssistantMessage, "", title=self._answer_title(), first_block=first_block, streaming=True),
            message_index=index,
        )
        assert isinstance(widget, AssistantMessage)
        stream = widget.start_stream()
        buffer = TokenBuffer()
        self.generating = True
        self._answers_started += 1
        self.run_worker(partial(self._produce, self.chat, engine, buffer),
                        thread=True, group="produce", exit_on_error=False)
        streamed = await StreamFeeder(buffer, stream.write).run()
        await self._finish(widget, stream, streamed, buffer.error, engine)

    @staticmethod
    def _produce(chat: ChatSession, engine: ChatEngine, buffer: TokenBuffer) -> None:
        """Runs on a worker thread: the session's stream-and-save loop hands text to the buffer, no widget."""
        error: BaseException | None = None
        try:
            for text in chat.reply(engine):
                buffer.put(text)
        except BaseException as caught:  # the UI reports it; the thread must never die silently
            error = caught
        finally:
            buffer.close(error)

    async def _finish(self, widget: AssistantMessage, stream: Any, streamed: str, error: BaseException | None,
                      engine: ChatEngine) -> None:
        reply = self.chat.last_reply
        interrupted = bool(reply and reply.get("interrupted"))
        stats = engine.stats
        footer = ""
        if reply is not None and error is None:
            footer = f"{stats.new_tokens} tokens · {stats.tokens_per_s:.1f} tok/s · first token {stats.ttft_s:.2f} s"
        await widget.end_stream(stream, interrupted=interrupted, footer=footer)
        if reply is not None and reply["content"] != streamed:
            # The engine trims what is not part of the answer (a stop string); show exactly what was kept.
            await widget.markdown.update(make_inert(reply["content"]))
        if reply is None:
            await self._remove_messages_from(len(self.chat.messages))
        if not self._queued or error is not None or interrupted:
            self.generating = False
        if error is None and reply is not None and not interrupted and not self._queued:
            self.compact_if_due()  # started with no await before it: nothing sees the app idle in between
        if error is None:
            self.status_line.tokens_per_s = stats.tokens_per_s
            self.status_line.cached_tokens = stats.cached_tokens
        self.count_context()
        for warning in engine.warnings:
            await self.add_note(warning, "warning")
        if error is not None:
            message = str(error) if isinstance(error, StarchatError) else f"{type(error).__name__}: {error}"
            await self.add_note(f"the answer failed: {message}", "error")
        if error is not None or interrupted:
            self._give_back_queued()  # the user stopped, or it failed: they decide what to send now
        elif self._queued:
            self.run_worker(self._send_queued(), group="send")

    def watch_generating(self, generating: bool) -> None:
        self.status_line.generating = generating
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating or self.code_runner.running or self.chat.summarising
        if action == "cancel_edit":
            return self.chat.editing is not None
        return True

    async def stop_and_wait(self) -> None:
        """Stop any answer and wait until it is saved (before quitting)."""
        if self.generating:
            self.action_stop()
            for _ in range(100):
                if not self.generating:
                    break
                await asyncio.sleep(0.05)

    async def open_session(self, session_id: str) -> None:
        if self.generating:
            self.notify("Still answering: press Esc to stop it first.", severity="warning")
            return
        try:
            chat = ChatSession.open(self.chat.store, session_id) if self.chat.store is not None else None
        except UsageError as error:
            self.notify(str(error), severity="error")
            return
        if chat is None:
            return
        engine = self.engine
        note = ""
        if engine is not None and chat.model != engine.model_name:
            note = f"this session was with {chat.model}; {engine.model_name} answers now (/model {chat.model} to switch)"
        await self.show_chat_now(chat, note)

    # -- keys and palette actions ----------------------------------------------------------------------

    def action_stop(self) -> None:
        self.code_runner.stop()
        engine = self.engine
        if engine is not None and (self.generating or self.chat.summarising):
            self._give_back_queued()
            engine.cancel()

    def action_command(self, text: str) -> None:
        """A palette entry or key that is a slash command."""
        self.run_command(text)

    def action_regenerate(self) -> None:
        self.run_command("/retry")

    def action_edit_last(self) -> None:
        self.run_command("/edit")

    def action_cancel_edit(self) -> None:
        self.chat.editing = None
        self.prompt.recall(self._draft_before_edit)
        self.refresh_bindings()
        self.notify("Edit cancelled.", timeout=2)

    def action_fork(self) -> None:
        def fork() -> None:
            turns = self.chat.turns()
            turn = ""
            if len(turns) > 1 and not self.generating:
                items = [(str(len(turns)), "all of it")] + [(str(n), f"#{n} {text}") for n, text in reversed(turns)]
                picked = self.pick("Fork the chat up to which turn?", items)
                if picked is None:
                    return
                turn = picked
            self._execute(f"/fork {turn}".strip())

        self.run_worker(fork, thread=True, group="command", exit_on_error=False)

    def action_clear(self) -> None:
        self.run_command("/clear")

    def action_system_prompt(self) -> None:
        self.run_command("/system")

    def action_pick_block(self, kind: str) -> None:
        def pick() -> None:
            from ...chat.blocks import number_blocks

            blocks = number_blocks(self.chat.messages)
            if not blocks:
                self._on_ui(self.notify, "No code blocks in this chat yet.", severity="warning")
                return
            items = [(str(b.number), f"{b.number}  {b.language or 'text'}  "
                      f"{b.code.strip().splitlines()[0] if b.code.strip() else ''}") for b in reversed(blocks)]
            picked = self.pick(f"Which code block to {kind}?", items)
            if picked is not None:
                self._execute(f"/{kind} {picked}")

        self.run_worker(pick, thread=True, group="command", exit_on_error=False)

    @on(PromptInput.HistorySearch)
    def on_history_search(self, _event: PromptInput.HistorySearch) -> None:
        self.action_history_search()

    @work(group="action")
    async def action_history_search(self) -> None:
        history = list(dict.fromkeys(reversed(self.prompt.prompt_history)))
        if not history:
            self.notify("No prompt history yet.", timeout=2)
            return
        picked = await self.app.push_screen_wait(
            PickerScreen("Search prompt history", [(text, text) for text in history], placeholder="type words to find")
        )
        if picked is not None:
            self.prompt.recall(picked)
            self.prompt.focus()

    # -- code blocks and tool results ------------------------------------------------------------------

    def _focusable_blocks(self) -> list[Widget]:
        return [w for w in self.transcript.query("CodeFence, ToolResult") if w.display]

    def _move_block(self, step: int) -> None:
        blocks = self._focusable_blocks()
        if not blocks:
            self.notify("No code blocks on screen.", timeout=2)
            return
        focused = self.focused
        if focused in blocks:
            index = max(0, min(len(blocks) - 1, blocks.index(focused) + step))
        else:
            index = len(blocks) - 1 if step < 0 else 0
        blocks[index].focus()
        blocks[index].scroll_visible(animate=False)

    def action_block_prev(self) -> None:
        self._move_block(-1)

    def action_block_next(self) -> None:
        self._move_block(1)

    @on(CodeFence.Action)
    def on_code_fence_action(self, event: CodeFence.Action) -> None:
        self.run_command(f"/{event.kind} {event.number}")

    @on(CodeFence.Back)
    @on(ToolResult.Back)
    def on_back(self, _event: object) -> None:
        self.prompt.focus()

    @on(ToolResult.Explain)
    def on_tool_result_explain(self, event: ToolResult.Explain) -> None:
        if self.generating:
            self.notify("Still answering: press Esc to stop it first.", severity="warning")
            return
        self.prompt.focus()
        self.run_worker(self.send(event.prompt, remember=False), group="send")

    @on(ToolResult.Copy)
    def on_tool_result_copy(self, event: ToolResult.Copy) -> None:
        how = copy_text(self.app.copy_to_clipboard, event.text)
        self.notify(f"Copied the output {how}.", timeout=3)

    @on(TextArea.Changed, "#prompt")
    def on_prompt_changed(self, event: TextArea.Changed) -> None:
        self.menu.show(commands.complete(event.text_area.text, partial(commands.dynamic_choices, self)))
