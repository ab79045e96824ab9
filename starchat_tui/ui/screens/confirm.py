"""A yes/no question that needs a deliberate answer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Ask a question; dismisses with True only for the yes button (or its key)."""

    BINDINGS = [Binding("escape,n", "answer(False)", "No", show=False), Binding("y", "answer(True)", "Yes", show=False)]

    def __init__(self, question: str, *, yes: str = "Yes", no: str = "No", danger: bool = False,
                 detail: str = "") -> None:
        super().__init__(classes="dialog")
        self.question = question
        self.detail = detail  # shown above the question, scrollable: a diff in colour
        self.yes = yes
        self.no = no
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(classes="box" + (" -danger" if self.danger else "") + (" -wide -tall" if self.detail else "")):
            if self.detail:
                from .viewer import coloured_diff, is_diff

                with VerticalScroll(id="detail", classes="-diff"):
                    yield Static(coloured_diff(self.detail) if is_diff(self.detail) else self.detail, markup=False)
            yield Static(self.question, classes="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error" if self.danger else "primary", id="yes", compact=True)
                yield Button(f"{self.no} (n)", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no" if self.danger else "#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)
