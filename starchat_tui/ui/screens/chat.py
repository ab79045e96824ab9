"""The chat screen: transcript, prompt and status line, and every action on the conversation.

The conversation itself lives in :class:`~starchat_tui.session.chat_session.ChatSession` (which saves it); the engine
is the app's. This screen turns keys, slash commands and palette entries into changes to the conversation
and to what is on screen, and runs generation on a worker thread that only ever hands text to a buffer.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static, TextArea

from ...chat.attachments import Attachment
from ...chat.inert import make_inert
from ...errors import StarchatError, UsageError
from ...session import commands
from .. import keymap
from ...chat.blocks import CodeBlock, blocks_before, blocks_in, number_blocks
from ..clipboard import copy_text
from ...session.chat_session import ChatSession
from ..feeder import StreamFeeder, TokenBuffer
from ..widgets.answer import AssistantMessage
from ..widgets.code_fence import CodeFence
from ..widgets.messages import NoteMessage, UserMessage
from ..widgets.prompt import CompletionMenu, PromptInput
from ..widgets.status import StatusLine
from ..widgets.tool_result import ToolResult
from ..widgets.transcript import Transcript
from .ask import AskScreen
from .confirm import ConfirmScreen
from .picker import PickerScreen
from .plain import PlainNotify
from .run_code import RunChoice, RunCodeScreen
from .viewer import TextViewer

# Fence tags people write for the two languages the sandbox always has.
RUN_LANGUAGES = {"py": "python", "python3": "python", "python": "python", "sh": "bash", "shell": "bash",
                 "bash": "bash", "console": "bash", "zsh": "bash"}
WELCOME = (
    "Ask about code. Enter sends · Ctrl+J or Alt+Enter adds a line · Esc stops an answer · "
    "/ for commands · Ctrl+P for every action · F1 for keys"
)


class ChatScreen(PlainNotify, Screen):
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
        self.attachments = list(attachments or [])
        self.instruction = instruction
        self.send_first = send_first
        self.editing: int | None = None  # index of the user message being edited
        self._draft_before_edit = ""
        self._entry_of: list[int] = []  # message index -> transcript entry index
        self._entry_count = 0
        self._waiting: str | None = None  # a message (or "" to only generate) waiting for the model
        self._always_run = False
        self._run_cancel: threading.Event | None = None  # set while a code block runs
        # Built here, not in compose, so the app can report loading progress before the screen mounts.
        self.transcript = Transcript()
        self.menu = CompletionMenu()
        self.prompt = PromptInput(history=self._prompt_history())
        self.prompt.menu = self.menu
        self.prompt.accepts = self._accepts
        self.status = StatusLine()
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
        yield self.status
        yield Footer()

    def _prompt_history(self) -> list[str]:
        try:
            return self.chat.store.prompts()
        except Exception:  # history is a convenience; a broken one must not stop the chat
            return []

    async def on_mount(self) -> None:
        self._show_attachments()
        await self.show_chat(self.chat)
        self._shown.set()
        self.prompt.focus()
        if self.instruction and not self.send_first:
            self.prompt.recall(self.instruction)
        elif self.send_first:
            self.run_worker(self.send(self.instruction), group="send")

    # -- engine state (called by the app) --------------------------------------------------------------

    def engine_progress(self, step: str) -> None:
        self.status.error = ""
        self.status.loading_step = step

    async def engine_ready(self, engine: Any) -> None:
        status = self.status
        status.loading_step = ""
        status.error = ""
        status.model, status.device, status.dtype = Path(engine.model_name).name or engine.model_name, engine.device, engine.dtype
        status.context_limit = engine.context_limit
        self.count_context()
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            # A callable, not a coroutine: a worker that never starts (the app is closing) then leaves nothing
            # un-awaited behind.
            self.run_worker(partial(self.send, waiting) if waiting else self.generate, group="send")

    def engine_failed(self, message: str) -> None:
        self.status.loading_step = ""
        self.status.error = message
        self.run_worker(partial(self.note, f"{message}\nLoad another with /model NAME.", "error"))

    @property
    def engine(self) -> Any:
        return getattr(self.app, "engine", None)

    @work(thread=True, exclusive=True, group="count", exit_on_error=False)
    def count_context(self) -> None:
        """Measure the context the conversation fills, off the UI thread (tokenizing can take a while)."""
        engine = self.engine
        messages = list(self.chat.conversation.messages)
        if engine is None:
            return
        used = engine.renderer.count_messages(messages) if messages else 0
        self.app.call_from_thread(setattr, self.status, "context_used", used)

    # -- showing a chat --------------------------------------------------------------------------------

    async def show_chat(self, chat: ChatSession) -> None:
        """Show ``chat`` from scratch (at start, after opening, forking or clearing)."""
        self.chat = chat
        self.editing = None
        factories = []
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
            else:
                factories.append(partial(
                    AssistantMessage, message["content"], title=self._answer_title(), first_block=first_block,
                    interrupted=bool(message.get("interrupted")),
                ))
                first_block += len(blocks_in(message["content"]))
        self._entry_count = len(factories)
        await self.transcript.show(factories)
        self.status.session = chat.session_id or "new"
        self.status.tokens_per_s = 0.0
        self.status.cached_tokens = 0
        self.count_context()

    def _answer_title(self) -> str:
        engine = self.engine
        name = engine.model_name if engine is not None else self.chat.model
        return Path(name).name or name

    async def _add_entry(self, factory, *, message_index: int | None = None) -> Widget:
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

    async def note(self, text: str, kind: str = "info") -> None:
        await self._shown.wait()
        await self._add_entry(partial(NoteMessage, text, kind=kind))

    # -- attachments -----------------------------------------------------------------------------------

    def _show_attachments(self) -> None:
        bar = self.query_one("#attachments", Static)
        if not self.attachments:
            bar.display = False
            return
        described = ", ".join(
            f"{a.source} ({a.language or 'text'}, {a.text.count(chr(10)) + 1} lines)" for a in self.attachments
        )
        bar.update(f"📎 attached: {described}: sent with your next message")
        bar.display = True

    # -- sending ---------------------------------------------------------------------------------------

    def _accepts(self, text: str) -> bool:
        if self.generating and not commands.is_command(text):
            self.notify("Still answering: press Esc to stop it, then send.", severity="warning")
            return False
        return True

    @on(PromptInput.Submitted)
    def on_prompt_submitted(self, event: PromptInput.Submitted) -> None:
        if commands.is_command(event.text):
            self._remember_prompt(event.text)
            self.run_worker(self.run_slash(event.text), group="slash")
        else:
            self.run_worker(self.send(event.text), group="send")

    async def send(self, text: str, *, remember: bool = True) -> None:
        """Send a message (with any attachments) and stream the answer."""
        if text.startswith("//"):
            text = text[1:]
        if text.strip() and remember:
            self._remember_prompt(text)
        if self.editing is not None:
            index, _ = self.chat.take_last_user()
            await self._remove_messages_from(index)
            self.editing = None
        content = text
        if self.attachments:
            engine = self.engine
            if engine is None:
                await self._wait_for_engine(text)
                return
            from ...engine.render import fit_attachments

            try:
                options = self.chat.resolved_options()
                content, cuts = fit_attachments(engine.renderer, self.chat.conversation, text, self.attachments,
                                                options["max_new_tokens"])
            except UsageError as error:
                await self.note(str(error), "error")
                self.prompt.recall(text)
                return
            for cut in cuts:
                await self.note(cut, "warning")
            self.attachments = []
            self._show_attachments()
        elif not text.strip():
            return
        try:
            self.chat.add_user(content)
        except StarchatError as error:
            await self.note(f"could not save the message: {error}", "error")
            self.prompt.recall(text)
            return
        self.status.session = self.chat.session_id or "new"
        await self._add_entry(partial(UserMessage, content, turn=self.chat.turn_count()),
                              message_index=len(self.chat.messages) - 1)
        self.transcript.follow()
        await self.generate()

    def _remember_prompt(self, text: str) -> None:
        try:
            self.chat.store.add_prompt(text)
        except Exception as error:  # losing history is worth a warning, not a lost message
            self.notify(f"prompt history not saved: {error}", severity="warning")

    async def _wait_for_engine(self, text: str) -> None:
        if self._waiting is not None:
            self.notify("A message is already waiting for the model to load.", severity="warning")
            self.prompt.recall(text)
            return
        self._waiting = text
        loading = getattr(self.app, "loading_model", None)
        await self.note(
            f"waiting for {loading} to load; your message goes out as soon as it is ready" if loading
            else "no model is loaded: load one with /model NAME and your message goes out then",
        )

    async def generate(self) -> None:
        """Stream an answer to the conversation as it stands."""
        engine = self.engine
        if engine is None:
            if self._waiting is None:
                self._waiting = ""
                loading = getattr(self.app, "loading_model", None)
                await self.note(f"waiting for {loading} to load…" if loading
                                else "no model is loaded: load one with /model NAME")
            return
        try:
            options = self.chat.resolved_options()
        except UsageError as error:
            await self.note(f"{error} (change it with /set)", "error")
            return
        index = len(self.chat.messages)
        first_block = blocks_before(self.chat.messages, index) + 1
        widget = await self._add_entry(
            partial(AssistantMessage, "", title=self._answer_title(), first_block=first_block, streaming=True),
            message_index=index,
        )
        assert isinstance(widget, AssistantMessage)
        stream = widget.start_stream()
        buffer = TokenBuffer()
        self.chat.start_reply()
        self.generating = True
        self.run_worker(
            partial(self._produce, engine, self.chat.conversation, options, buffer),
            thread=True, group="produce", exit_on_error=False,
        )
        feeder = StreamFeeder(buffer, stream.write, on_progress=self.chat.reply_progress)
        streamed = await feeder.run()
        await self._finish(widget, stream, streamed, buffer.error, engine)

    @staticmethod
    def _produce(engine: Any, conversation: Any, options: dict, buffer: TokenBuffer) -> None:
        """Runs on a worker thread: generation hands text to the buffer and touches no widget."""
        error: BaseException | None = None
        try:
            for text in engine.stream(conversation, **options):
                buffer.put(text)
        except BaseException as caught:  # the UI reports it; the thread must never die silently
            error = caught
        finally:
            buffer.close(error)

    async def _finish(self, widget: AssistantMessage, stream: Any, streamed: str, error: BaseException | None,
                      engine: Any) -> None:
        reply = self.chat.finish_reply(streamed, error)
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
        self.generating = False
        if error is None:
            self.status.tokens_per_s = stats.tokens_per_s
            self.status.cached_tokens = stats.cached_tokens
            self.status.context_used = stats.prompt_tokens + stats.new_tokens
        for warning in getattr(engine, "warnings", []) or []:
            await self.note(warning, "warning")
        if error is not None:
            message = str(error) if isinstance(error, StarchatError) else f"{type(error).__name__}: {error}"
            await self.note(f"the answer failed: {message}", "error")

    def watch_generating(self, generating: bool) -> None:
        self.status.generating = generating
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.generating or self._run_cancel is not None
        if action == "cancel_edit":
            return self.editing is not None
        return True

    # -- actions ---------------------------------------------------------------------------------------

    def action_stop(self) -> None:
        if self._run_cancel is not None:
            self._run_cancel.set()
        engine = self.engine
        if engine is not None and self.generating:
            engine.cancel()

    async def stop_and_wait(self) -> None:
        """Stop any answer and wait until it is saved (before quitting)."""
        if self.generating:
            self.action_stop()
            for _ in range(100):
                if not self.generating:
                    break
                await asyncio.sleep(0.05)


    def _busy(self) -> bool:
        if self.generating:
            self.notify("Still answering: press Esc to stop it first.", severity="warning")
            return True
        return False

    @work(group="action")
    async def action_regenerate(self) -> None:
        if self._busy():
            return
        try:
            index = self.chat.drop_last_reply()
        except UsageError as error:
            self.notify(str(error), severity="warning")
            return
        await self._remove_messages_from(index)
        await self.generate()

    def action_edit_last(self) -> None:
        if self._busy():
            return
        user_indices = [i for i, m in enumerate(self.chat.messages) if m["role"] == "user"]
        if not user_indices:
            self.notify("No message to edit yet.", severity="warning")
            return
        self.editing = user_indices[-1]
        self._draft_before_edit = self.prompt.text
        self.prompt.recall(self.chat.messages[user_indices[-1]]["content"])
        self.prompt.focus()
        self.notify("Editing your last message: Enter resends it (its answer is replaced), Esc cancels.", timeout=5)

    def action_cancel_edit(self) -> None:
        self.editing = None
        self.prompt.recall(self._draft_before_edit)
        self.notify("Edit cancelled.", timeout=2)

    @work(group="action")
    async def action_fork(self, turn: int | None = None) -> None:
        if self._busy():
            return
        if turn is None and self.chat.turn_count() > 1:
            items = [(str(len(self._turns())), "all of it")] + [
                (str(n), f"#{n} {text}") for n, text in reversed(self._turns())
            ]
            picked = await self.app.push_screen_wait(PickerScreen("Fork the chat up to which turn?", items))
            if picked is None:
                return
            turn = int(picked)
        try:
            forked = self.chat.fork(turn)
        except UsageError as error:
            self.notify(str(error), severity="warning")
            return
        source = self.chat.session_id
        await self.show_chat(forked)
        await self.note(f"forked from session {source}: this is a new session ({forked.session_id}); "
                        "the original is unchanged")

    def _turns(self) -> list[tuple[int, str]]:
        turns = []
        for message in self.chat.messages:
            if message["role"] == "user":
                first = message["content"].strip().splitlines()[0] if message["content"].strip() else ""
                turns.append((len(turns) + 1, first[:80]))
        return turns

    @work(group="action")
    async def action_clear(self) -> None:
        if self._busy():
            return
        previous = self.chat.session_id
        await self.show_chat(self.chat.fresh())
        if previous:
            await self.note(f"a fresh chat; the previous one is saved as session {previous} (Ctrl+O to reopen it)")

    async def open_session(self, session_id: str) -> None:
        if self._busy():
            return
        try:
            chat = ChatSession.open(self.chat.store, session_id)
        except UsageError as error:
            self.notify(str(error), severity="error")
            return
        await self.show_chat(chat)
        engine = self.engine
        if engine is not None and chat.model != engine.model_name:
            await self.note(f"this session was with {chat.model}; {engine.model_name} answers now "
                            f"(/model {chat.model} to switch)")

    @work(group="action")
    async def action_system_prompt(self) -> None:
        text = await self.app.push_screen_wait(
            AskScreen("System prompt for this chat (empty: none)", self.chat.system or "", multiline=True)
        )
        if text is not None:
            await self._set_system(text)

    async def _set_system(self, text: str) -> None:
        self.chat.set_system(text.strip() or None)
        self.count_context()
        await self.note(f"system prompt {'set' if text.strip() else 'removed'} for this chat")

    @work(group="action")
    async def action_edit_settings(self) -> None:
        current = "\n".join(f"{key} = {value!r}" for key, value in self.chat.options.items())
        text = await self.app.push_screen_wait(AskScreen(
            "Generation settings for this chat, one KEY = VALUE per line (defaults: temperature 0.2, top_k 50, "
            "top_p 0.95, max_new_tokens 1024)", current, multiline=True,
        ))
        if text is None:
            return
        from ...config import parse_value

        options: dict[str, Any] = {}
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.strip().startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                self.notify(f"line {number}: expected KEY = VALUE", severity="error")
                return
            options[key.strip()] = parse_value(value.strip().strip("'\""))
        try:
            self.chat.replace_options(options)
        except UsageError as error:
            self.notify(str(error), severity="error")
            return
        await self.note("generation settings: " + (", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"))

    @work(group="action")
    async def action_switch_model(self) -> None:
        name = await self.app.push_screen_wait(AskScreen("Model to load (a Hub id or a folder)", self.chat.model))
        if name and name.strip():
            self.switch_model(name.strip())

    def switch_model(self, name: str) -> None:
        if self._busy():
            return
        if getattr(self.app, "loading_model", None):
            self.notify(f"Still loading {self.app.loading_model}; wait for it first.", severity="warning")
            return
        self.chat.set_model(name)
        self.app.load_model(name)

    @work(group="action")
    async def action_pick_block(self, kind: str) -> None:
        blocks = number_blocks(self.chat.messages)
        if not blocks:
            self.notify("No code blocks in this chat yet.", severity="warning")
            return
        items = [(str(b.number), f"{b.number}  {b.language or 'text'}  {b.code.strip().splitlines()[0] if b.code.strip() else ''}")
                 for b in reversed(blocks)]
        picked = await self.app.push_screen_wait(PickerScreen(f"Which code block to {kind}?", items))
        if picked is not None:
            await self.block_action(int(picked), kind)

    def action_copy_answer(self) -> None:
        answers = [m for m in self.chat.messages if m["role"] == "assistant"]
        if not answers:
            self.notify("No answer to copy yet.", severity="warning")
            return
        how = copy_text(self.app, answers[-1]["content"])
        self.notify(f"Copied the last answer {how}.", timeout=3)

    def action_show(self, what: str) -> None:
        engine = self.engine
        if what == "prompt":
            if engine is None:
                self.notify("The model is not loaded yet: the prompt depends on its tokenizer.", severity="warning")
                return
            text = engine.renderer.render_prompt(self.chat.conversation.messages)
            self.app.push_screen(TextViewer(f"The exact prompt the model sees ({engine.renderer.count_tokens(text)} tokens)", text))
        elif what == "params":
            try:
                options = self.chat.resolved_options()
            except UsageError as error:
                self.notify(str(error), severity="error")
                return
            lines = ["# this chat's settings (/set KEY VALUE changes one, /set KEY resets it)"]
            lines += [f"{key} = {value!r}" for key, value in self.chat.options.items()] or ["# none: the defaults"]
            lines += ["", "# what generate() is given (temperature 0 means greedy decoding)"]
            lines += [f"{key} = {value!r}" for key, value in options.items()]
            self.app.push_screen(TextViewer("Generation settings", "\n".join(lines)))
        elif what == "template":
            if engine is not None:
                source = engine.renderer.template_source
                origin = "the tokenizer's own" if engine.renderer.uses_own_template else "the StarChat template"
            else:
                from ...chat.template import CHAT_TEMPLATE

                source, origin = CHAT_TEMPLATE, "the StarChat template"
            self.app.push_screen(TextViewer(f"Chat template ({origin})", source))
        else:
            self.notify("show what? /show prompt, /show params or /show template", severity="warning")

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
        self.run_worker(self.block_action(event.number, event.kind), group="block")

    @on(CodeFence.Back)
    @on(ToolResult.Back)
    def on_back(self, _event) -> None:
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
        how = copy_text(self.app, event.text)
        self.notify(f"Copied the output {how}.", timeout=3)

    def _block(self, number: int) -> CodeBlock:
        blocks = number_blocks(self.chat.messages)
        if not blocks:
            raise UsageError("there are no code blocks in this chat yet")
        if not 1 <= number <= len(blocks):
            raise UsageError(f"no code block {number}: this chat has blocks 1 to {len(blocks)}")
        return blocks[number - 1]

    async def block_action(self, number: int, kind: str, argument: str = "") -> None:
        try:
            block = self._block(number)
            if kind == "copy":
                how = copy_text(self.app, block.code)
                self.notify(f"Copied block {number} ({block.line_count} lines) {how}.", timeout=3)
            elif kind == "save":
                await self.save_block(block, argument)
            elif kind == "run":
                await self.run_block(block, argument)
        except UsageError as error:
            self.notify(str(error), severity="error")

    async def save_block(self, block: CodeBlock, path_text: str = "") -> None:
        if not path_text:
            path_text = await self.app.push_screen_wait(
                AskScreen(f"Save block {block.number} to", block.suggested_name(), placeholder="a file path")
            ) or ""
            if not path_text.strip():
                return
        path = Path(path_text.strip()).expanduser()
        if path.is_dir():
            path = path / block.suggested_name()
        if path.exists():
            sure = await self.app.push_screen_wait(ConfirmScreen(f"{path} exists. Replace it?", yes="Replace", danger=True))
            if not sure:
                return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.code + "\n", encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot save to {path}: {error.strerror or error}; choose another path") from None
        self.notify(f"Saved block {block.number} to {path}.", timeout=4)

    async def run_block(self, block: CodeBlock, language: str = "") -> None:
        try:
            from ... import sandbox
        except ImportError:
            await self.note("the sandbox is not part of this build, so code cannot run here; copy it with "
                            f"/copy {block.number} and run it yourself", "warning")
            return
        language = language or RUN_LANGUAGES.get(block.language.lower(), block.language.lower())
        if not language:
            raise UsageError(f"block {block.number} has no language tag: say which, for example /run {block.number} python")
        info = sandbox.probe_backend()
        if self._always_run and info.safe:
            choice = RunChoice("run", block.code)
        else:
            choice = await self.app.push_screen_wait(RunCodeScreen(
                block.number, language, block.code, backend=info.name, reason=info.reason, safe=info.safe,
            ))
        if choice.action == "skip":
            return
        if choice.action == "copy":
            how = copy_text(self.app, choice.code)
            self.notify(f"Copied block {block.number} {how}.", timeout=3)
            return
        if choice.action == "always":
            self._always_run = True
        if not info.safe:
            sure = await self.app.push_screen_wait(ConfirmScreen(
                f"Really run block {block.number} with NO sandbox, as you, with your files and network?",
                yes="Run unsandboxed", danger=True,
            ))
            if not sure:
                return
        settings = getattr(self.app, "settings", None)
        section = settings.section("sandbox") if settings is not None else {}
        timeout = float(section.get("timeout", 30))
        cancel = threading.Event()
        self._run_cancel = cancel
        self.refresh_bindings()
        self.status.loading_step = f"running block {block.number} ({language}) in {info.name} · Esc stops it"

        def execute() -> Any:
            # The user confirmed this run (twice without a sandbox): only now is an unsafe run allowed.
            options = dict(timeout=timeout, allow_unsafe=not info.safe, cancel=cancel)
            try:
                return sandbox.run(choice.code, language, workdir=self._workdir(), **options)
            except UsageError as error:
                if not str(error).startswith("work dir"):
                    raise
                # This chat's folder is one the sandbox cannot use here: run in a fresh folder instead.
                return sandbox.run(choice.code, language, workdir=None, **options)

        worker = self.run_worker(execute, thread=True, group="sandbox", exit_on_error=False)
        try:
            result = await self._await_worker(worker)
        finally:
            self.status.loading_step = ""
            self._run_cancel = None
            self.refresh_bindings()
        if isinstance(result, BaseException):
            message = str(result) if isinstance(result, StarchatError) else f"{type(result).__name__}: {result}"
            await self.note(f"block {block.number} could not run: {message}", "error")
            return
        widget = await self._add_entry(partial(ToolResult, block.number, language, result))
        widget.focus()
        widget.scroll_visible(animate=False)

    @staticmethod
    async def _await_worker(worker) -> Any:
        from textual.worker import WorkerFailed

        try:
            return await worker.wait()
        except WorkerFailed as failed:
            return failed.error

    def _workdir(self) -> Path:
        from ...config import cache_dir

        folder = cache_dir() / "runs" / (self.chat.session_id or "unsaved")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- slash commands --------------------------------------------------------------------------------

    @on(TextArea.Changed, "#prompt")
    def on_prompt_changed(self, event: TextArea.Changed) -> None:
        self.menu.show(commands.complete(event.text_area.text, self._dynamic_choices))

    def _dynamic_choices(self, name: str) -> list[str]:
        if name in ("copy", "save", "run"):
            return [str(b.number) for b in number_blocks(self.chat.messages)]
        if name == "theme":
            return sorted(self.app.available_themes)
        if name == "fork":
            return [str(n) for n, _ in self._turns()]
        return []

    async def run_slash(self, text: str) -> None:
        try:
            command, argument = commands.parse(text)
            await getattr(self, f"slash_{command.name}")(argument)
        except UsageError as error:
            self.notify(str(error), severity="error", timeout=6)

    @staticmethod
    def _number(argument: str, usage: str) -> tuple[int, str]:
        head, _, rest = argument.partition(" ")
        if not head.isdigit():
            raise UsageError(f"expected a block number: {usage}")
        return int(head), rest.strip()

    async def slash_help(self, _argument: str) -> None:
        self.app.action_help()

    async def slash_model(self, argument: str) -> None:
        if not argument:
            self.action_switch_model()
            return
        self.switch_model(argument)

    async def slash_system(self, argument: str) -> None:
        if not argument:
            self.action_system_prompt()
            return
        await self._set_system("" if argument.lower() in ("none", "off", "-") else argument)

    async def slash_set(self, argument: str) -> None:
        from ...config import parse_value

        key, _, value = argument.partition(" ")
        if not key:
            self.action_show("params")
            return
        self.chat.set_option(key, parse_value(value.strip()) if value.strip() else None)
        shown = f"{key} = {parse_value(value.strip())!r}" if value.strip() else f"{key} back to its default"
        await self.note(f"{shown} for this chat")

    async def slash_show(self, argument: str) -> None:
        self.action_show(argument.strip().lower())

    async def slash_retry(self, _argument: str) -> None:
        self.action_regenerate()

    async def slash_edit(self, _argument: str) -> None:
        self.action_edit_last()

    async def slash_fork(self, argument: str) -> None:
        if argument and not argument.isdigit():
            raise UsageError("expected a turn number: /fork [TURN]")
        self.action_fork(int(argument) if argument else len(self._turns()) or None)

    async def slash_copy(self, argument: str) -> None:
        if not argument:
            self.action_copy_answer()
            return
        number, _ = self._number(argument, "/copy N")
        await self.block_action(number, "copy")

    async def slash_save(self, argument: str) -> None:
        number, path = self._number(argument, "/save N [PATH]")
        await self.block_action(number, "save", path)

    async def slash_run(self, argument: str) -> None:
        number, language = self._number(argument, "/run N [LANGUAGE]")
        await self.block_action(number, "run", language)

    async def slash_export(self, argument: str) -> None:
        from ...store import transcripts

        words = argument.split()
        fmt = words.pop(0).lower() if words and words[0].lower() in ("md", "json", "jsonl") else None
        path_text = " ".join(words)
        if self.chat.session_id is None:
            raise UsageError("nothing to export yet: send a message first")
        fmt = transcripts.format_for(path_text or None, fmt)
        path = Path(path_text).expanduser() if path_text else Path(f"starchat-{self.chat.session_id}.{fmt}")
        text = transcripts.render([transcripts.session_transcript(self.chat.store, self.chat.session_id)], fmt)
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as error:
            raise UsageError(f"cannot write {path}: {error.strerror or error}; choose another path") from None
        await self.note(f"exported this chat as {fmt} to {path.resolve()}")

    async def slash_clear(self, _argument: str) -> None:
        self.action_clear()

    slash_new = slash_clear

    async def slash_sessions(self, _argument: str) -> None:
        self.app.action_sessions()

    async def slash_theme(self, argument: str) -> None:
        if argument not in self.app.available_themes:
            raise UsageError(f"no theme {argument!r}: one of {', '.join(sorted(self.app.available_themes))}")
        self.app.theme = argument

    async def slash_quit(self, _argument: str) -> None:
        await self.app.action_quit()

    def action_export(self) -> None:
        self.run_worker(self.run_slash("/export"), group="slash")
