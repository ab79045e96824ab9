"""Asking the user for a line (a file name, a title, a model) or a text (a system prompt)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static, TextArea


class AskScreen(ModalScreen[str | None]):
    """One input; Enter (or Ctrl+S for a multiline text) accepts, Esc cancels with None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "accept", "Save")]

    def __init__(self, title: str, value: str = "", *, placeholder: str = "", multiline: bool = False,
                 hint: str = "") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.value = value
        self.placeholder = placeholder
        self.multiline = multiline
        self.hint = hint or ("Ctrl+S saves · Esc cancels" if multiline else "Enter accepts · Esc cancels")

    def compose(self) -> ComposeResult:
        with Vertical(classes="box" + (" -wide" if self.multiline else "")):
            yield Static(self.title_text, classes="question", markup=False)
            if self.multiline:
                yield TextArea(self.value, id="answer", soft_wrap=True, tab_behavior="indent")
            else:
                yield Input(self.value, placeholder=self.placeholder, id="answer")
            yield Static(self.hint, classes="hint", markup=False)

    def on_mount(self) -> None:
        widget = self.query_one("#answer")
        widget.focus()
        if isinstance(widget, TextArea):
            widget.move_cursor(widget.document.end)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_accept(self) -> None:
        widget = self.query_one("#answer")
        self.dismiss(widget.text if isinstance(widget, TextArea) else widget.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
