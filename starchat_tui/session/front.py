"""What a front-end gives the slash commands: a small interface for talking to the user and showing the chat.

The full-screen app and line mode each implement :class:`Front`; the command handlers in
:mod:`starchat_tui.session.commands` use nothing else, so every command behaves the same in both. Handlers
run off the UI's event loop (the app runs them on a worker thread), so each method blocks until its answer
is in, and may be called from any thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..chat.blocks import CodeBlock
    from ..config import Settings
    from ..engine.protocol import ChatEngine
    from ..sandbox.probe import BackendInfo
    from ..sandbox.result import Result
    from .chat_session import ChatSession
    from .code_runs import CodeRunner, RunChoice


class Front(Protocol):
    """A front-end, as the slash commands see it."""

    chat: ChatSession  # the chat on screen; commands that replace it call show_chat
    settings: Settings

    @property
    def engine(self) -> ChatEngine | None:
        """The loaded engine, or None while a model loads or after it failed."""
        ...

    @property
    def busy(self) -> bool:
        """True while an answer streams; commands that change the conversation wait for it to end."""
        ...

    # -- talking to the user --

    code_runner: CodeRunner

    def status(self, text: str) -> None:
        """Show what is under way (a code block running); an empty text clears it."""
        ...

    def note(self, text: str, kind: str = "info") -> None:
        """Tell the user something; ``kind`` is info, warning or error."""
        ...

    def ask(self, title: str, default: str = "", *, multiline: bool = False) -> str | None:
        """Ask for text; None when the user cancels."""
        ...

    def confirm(self, question: str, *, yes: str = "Yes", danger: bool = False, detail: str = "") -> bool:
        """Ask a yes/no question; ``detail`` (a diff to apply, say) is shown with it, for the answer to rest on."""
        ...

    def pick(self, title: str, items: list[tuple[str, str]]) -> str | None:
        """Let the user choose one of ``items`` ((value, label) pairs); None when cancelled."""
        ...

    def show_text(self, title: str, text: str) -> None: ...

    def attachments_changed(self) -> None:
        """The chat's pending attachments changed (/add, /drop, @path, !command): show them if the front-end can."""
        ...

    def copy(self, text: str) -> str:
        """Put ``text`` on the clipboard; returns how ("to the clipboard", "with OSC 52")."""
        ...

    # -- the chat --

    def show_chat(self, chat: ChatSession, note: str = "") -> None:
        """Show ``chat`` in place of the current one (after a fork, a clear, or opening a session)."""
        ...

    def generate(self) -> None:
        """Answer the conversation as it stands (after /retry)."""
        ...

    def edit_text(self, text: str) -> None:
        """Put ``text`` in the input for the user to change and send (after /edit)."""
        ...

    def switch_model(self, name: str) -> None: ...

    def open_sessions(self) -> None: ...

    def theme_names(self) -> list[str]:
        """The themes /theme accepts; empty where the front-end has none."""
        ...

    def set_theme(self, name: str) -> None: ...

    def show_help(self) -> None: ...

    def choose_run(self, block: CodeBlock, language: str, backend: BackendInfo) -> RunChoice:
        """Show the code about to run and how it would be sandboxed; the user runs, edits, copies or skips it."""
        ...

    def show_run(self, block: CodeBlock, language: str, result: Result) -> None: ...

    def quit(self) -> None: ...
