"""Choosing one item from a list that narrows as you type (prompt history, code blocks, turns)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from ...chat.inert import make_inert


class PickerScreen(ModalScreen[str | None]):
    """Dismisses with the chosen item's value, or None."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    def __init__(self, title: str, items: list[tuple[str, str]], *, placeholder: str = "type to filter") -> None:
        super().__init__(classes="dialog")
        self.title_text = title
        self.items = items  # (value, label), best first
        self.placeholder = placeholder
        self._shown: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="box -wide"):
            yield Static(self.title_text, classes="question", markup=False)
            yield Input(placeholder=self.placeholder, id="filter")
            yield OptionList(id="choices")
            yield Static("Enter chooses · ↑↓ move · Esc cancels", classes="hint")

    def on_mount(self) -> None:
        self._fill("")
        self.query_one("#filter", Input).focus()

    def _fill(self, text: str) -> None:
        words = text.lower().split()
        options = self.query_one("#choices", OptionList)
        options.clear_options()
        self._shown = []
        for value, label in self.items:
            if all(word in label.lower() for word in words):
                self._shown.append(value)
                first_line = make_inert(label.strip().splitlines()[0] if label.strip() else label)
                more = label.strip().count("\n")
                options.add_option(Option(Content(first_line + (f"  (+{more} lines)" if more else ""))))
            if len(self._shown) >= 500:
                break
        if self._shown:
            options.highlighted = 0

    def on_input_changed(self, event: Input.Changed) -> None:
        self._fill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        highlighted = self.query_one("#choices", OptionList).highlighted
        self.dismiss(self._shown[highlighted] if highlighted is not None and self._shown else None)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._shown[event.option_index])

    def action_move(self, step: int) -> None:
        options = self.query_one("#choices", OptionList)
        if options.option_count:
            current = options.highlighted or 0
            options.highlighted = max(0, min(options.option_count - 1, current + step))

    def action_cancel(self) -> None:
        self.dismiss(None)
