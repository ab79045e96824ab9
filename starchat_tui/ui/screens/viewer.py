"""A read-only view of a long text: the exact prompt, the chat template, the settings, a diff to apply."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from ...chat.inert import make_inert

if TYPE_CHECKING:
    from rich.text import Text

# A unified diff's lines, by their first characters: what was added, removed, and where.
DIFF_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


def is_diff(text: str) -> bool:
    return text.startswith("--- ") and "\n+++ " in text


def coloured_diff(text: str) -> Text:
    from rich.text import Text

    coloured = Text()
    for line in make_inert(text).splitlines(keepends=True):
        coloured.append(line, style=next((style for start, style in DIFF_STYLES if line.startswith(start)), ""))
    return coloured


class TextViewer(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, text: str) -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(classes="box -wide -tall"):
            yield Static(self.title_text, classes="question", markup=False)
            if is_diff(self.text):
                with VerticalScroll(id="view", classes="-diff"):
                    yield Static(coloured_diff(self.text))
            else:
                yield TextArea(make_inert(self.text), read_only=True, soft_wrap=True, id="view")
            yield Static("Esc closes · select text with the mouse, Ctrl+C copies", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#view").focus()

    def action_close(self) -> None:
        self.dismiss(None)
