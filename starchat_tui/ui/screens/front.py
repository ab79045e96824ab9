"""The chat screen's side of the slash commands: the :class:`~starchat_tui.session.front.Front` they talk through.

Commands run on a worker thread, so a dialog they open waits there and never blocks painting; every method
here hands its work to the UI thread and, for a question, waits for the answer.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from ...clipboard import copy_text
from ...errors import StarchatError, UsageError
from ...session import commands
from ...session.code_runs import RunChoice
from ..widgets.tool_result import ToolResult
from .ask import AskScreen
from .confirm import ConfirmScreen
from .picker import PickerScreen
from .run_code import RunCodeScreen
from .viewer import TextViewer

if TYPE_CHECKING:
    from ...chat.blocks import CodeBlock
    from ...sandbox.probe import BackendInfo
    from ...sandbox.result import Result
    from ...session.chat_session import ChatSession

T = TypeVar("T")


class ScreenFront:
    """Mixed into the chat screen, which provides the widgets and the coroutines these methods schedule."""

    def run_command(self, text: str) -> None:
        self.run_worker(partial(self._execute, text), thread=True, group="command", exit_on_error=False)

    def _execute(self, text: str) -> None:
        self._guarded((text.split() or [text])[0], partial(commands.execute, self, text))

    def compact_if_due(self) -> None:
        """After an answer, in a worker thread: config.toml's [chat] auto_compact, as line mode does it."""
        self.run_worker(partial(self._guarded, "compacting", partial(commands.compact_if_due, self)), thread=True,
                        group="command", exit_on_error=False)

    def _guarded(self, what: str, action: Callable[[], Any]) -> None:
        try:
            action()
        except StarchatError as error:
            self._on_ui(self.notify, str(error), severity="error", timeout=6)
        except Exception as error:  # a failed command is reported; the chat goes on
            self._on_ui(self.notify, f"{what} failed: {type(error).__name__}: {error}", severity="error")

    def _on_ui(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``callback`` on the UI thread and return its result (awaited when it is a coroutine)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # a worker thread: hand the call to the UI thread below
        else:
            result = callback(*args, **kwargs)
            if inspect.isawaitable(result):
                asyncio.ensure_future(result)
                return None
            return result
        try:
            return self.app.call_from_thread(callback, *args, **kwargs)
        except RuntimeError:  # the app is closing: there is nobody left to show it to
            return None

    def _dialog(self, screen: Any, default: T) -> T:
        """Show a modal screen and wait, on this worker thread, until the user dismisses it."""
        answered = threading.Event()
        results: list[T] = []

        def dismissed(result: T) -> None:
            results.append(result)
            answered.set()

        self._on_ui(self.app.push_screen, screen, dismissed)
        while not answered.wait(0.1):
            if not self.app.is_running:
                return default
        return results[0]

    def status(self, text: str) -> None:
        def show() -> None:
            self.status_line.loading_step = f"{text} · Esc stops it" if text else ""
            self.refresh_bindings()

        self._on_ui(show)

    def note(self, text: str, kind: str = "info") -> None:
        self._on_ui(self.add_note, text, kind)

    def ask(self, title: str, default: str = "", *, multiline: bool = False) -> str | None:
        return self._dialog(AskScreen(title, default, multiline=multiline), None)

    def confirm(self, question: str, *, yes: str = "Yes", danger: bool = False, detail: str = "") -> bool:
        return bool(self._dialog(ConfirmScreen(question, yes=yes, danger=danger, detail=detail), False))

    def pick(self, title: str, items: list[tuple[str, str]]) -> str | None:
        return self._dialog(PickerScreen(title, items), None)

    def show_text(self, title: str, text: str) -> None:
        self._on_ui(self.app.push_screen, TextViewer(title, text))

    def attachments_changed(self) -> None:
        self._on_ui(self._show_attachments)

    def copy(self, text: str) -> str:
        return str(self._on_ui(copy_text, self.app.copy_to_clipboard, text))

    def show_chat(self, chat: ChatSession, note: str = "") -> None:
        self._on_ui(self.show_chat_now, chat, note)

    def generate(self) -> None:
        self._on_ui(self.run_worker, self.generate_now, group="send")

    def edit_text(self, text: str) -> None:
        def edit() -> None:
            self._draft_before_edit = self.prompt.text
            self.prompt.recall(text)
            self.prompt.focus()
            self.refresh_bindings()
            self.notify("Editing your last message: Enter resends it (its answer is replaced), Esc cancels.", timeout=5)

        self._on_ui(edit)

    def switch_model(self, name: str) -> None:
        if self.starchat.loading_model:
            raise UsageError(f"still loading {self.starchat.loading_model}; wait for it first")
        self._on_ui(self.starchat.load_model, name)

    def open_sessions(self) -> None:
        self._on_ui(self.starchat.action_sessions)

    def theme_names(self) -> list[str]:
        return sorted(self.app.available_themes)

    def set_theme(self, name: str) -> None:
        self._on_ui(setattr, self.app, "theme", name)

    def show_help(self) -> None:
        self._on_ui(self.starchat.action_help)

    def choose_run(self, block: CodeBlock, language: str, backend: BackendInfo) -> RunChoice:
        screen = RunCodeScreen(block.number, language, block.code, backend=backend.name, reason=backend.reason,
                               safe=backend.safe)
        return self._dialog(screen, RunChoice("skip", block.code))

    def show_run(self, block: CodeBlock, language: str, result: Result) -> None:
        async def show() -> None:
            widget = await self._add_entry(partial(ToolResult, block.number, language, result))
            widget.focus()
            widget.scroll_visible(animate=False)

        self._on_ui(show)

    def quit(self) -> None:
        self._on_ui(self.starchat.action_quit)
