"""A read-only view of a long text: the exact prompt, the chat template, the settings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from ...chat.inert import make_inert


class TextViewer(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="box -wide -tall"):
            yield Static(self.title_text, classes="question", markup=False)
            yield TextArea(make_inert(self.text), read_only=True, soft_wrap=True, id="view")
            yield Static("Esc closes · select text with the mouse, Ctrl+C copies", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#view").focus()

    def action_close(self) -> None:
        self.dismiss(None)
