"""The other entries of a transcript: what the user sent, notes from the app, and the fold of older turns."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from ...chat.inert import make_inert

# A pasted file can be thousands of lines; show its head and fold the rest until asked.
FOLD_AFTER_LINES = 40
SHOW_WHEN_FOLDED = 24


class UserMessage(Vertical):
    """A user turn, shown literally (never as Markdown: people expect their text back as they wrote it)."""

    def __init__(self, content: str, *, turn: int) -> None:
        super().__init__(classes="message user")
        self.content = content
        self.turn = turn
        self._folded = content.count("\n") + 1 > FOLD_AFTER_LINES

    def compose(self) -> ComposeResult:
        yield Static(f"you  #{self.turn}", classes="title", markup=False)
        yield Static(self._body(), classes="body")

    def _body(self) -> Content:
        text = make_inert(self.content)
        if not self._folded:
            return Content(text)
        lines = text.split("\n")
        hidden = len(lines) - SHOW_WHEN_FOLDED
        return Content("\n".join(lines[:SHOW_WHEN_FOLDED]) + "\n").append(
            Content.from_markup(f"[@click=unfold]… {hidden} more lines (click to show)[/]")
        )

    def action_unfold(self) -> None:
        self._folded = False
        self.query_one(".body", Static).update(self._body())


class NoteMessage(Static):
    """Something the app tells the user in the transcript (not part of the conversation)."""

    def __init__(self, text: str, *, kind: str = "info") -> None:
        super().__init__(Content(make_inert(text)), classes=f"note -{kind}")
        self.kind = kind


class EarlierMessages(Static):
    """Stands in for the oldest turns, which are not mounted until the user scrolls up to them."""

    class Expand(Message):
        """Mount more of the older turns."""

    def __init__(self) -> None:
        super().__init__("", classes="earlier")
        self.count = 0

    def set_count(self, count: int) -> None:
        self.count = count
        self.display = count > 0
        self.update(Content.from_markup(f"[@click=expand]▲ {count} earlier messages: scroll up or click to show[/]"))

    def action_expand(self) -> None:
        self.post_message(self.Expand())
