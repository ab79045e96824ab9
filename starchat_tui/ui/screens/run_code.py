"""The question before any code runs: the code, where it would run, and Run / Edit / Copy / Skip / Always.

Nothing runs on its own. "Always" only skips this question for the rest of the session; the user still
starts every run with a key press, and without a sandbox every run is confirmed again.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static, TextArea

from ...session.code_runs import RunChoice
from ..highlight import code_style


class RunCodeScreen(ModalScreen[RunChoice]):
    BINDINGS = [
        Binding("escape", "choose('skip')", "Skip"),
        Binding("ctrl+r", "choose('run')", "Run", show=False),
    ]

    def __init__(self, number: int, language: str, code: str, *, backend: str, reason: str, safe: bool) -> None:
        super().__init__(classes="dialog")
        self.number = number
        self.language = language
        self.code = code
        self.backend = backend
        self.reason = reason
        self.safe = safe
        self.editing = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="box -wide -tall" + ("" if self.safe else " -danger")):
            yield Static(f"Run code block {self.number} ({self.language or 'text'})?", classes="question", markup=False)
            if self.safe:
                yield Static(f"sandbox: {self.backend} · {self.reason}", classes="hint", markup=False)
            else:
                yield Static(
                    f"NO SANDBOX ({self.reason}). This code would run as you, with your files and network. "
                    "Run it only if you have read it and trust it; you will be asked again.",
                    classes="warning-banner", markup=False,
                )
            with VerticalScroll(id="code-view"):
                from ..app import StarchatApp  # here: the app module imports this screen

                style = self.app.code_style if isinstance(self.app, StarchatApp) else code_style("monokai")
                yield Static(style.highlight(self.code, self.language), id="code", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Run (r)", variant="error" if not self.safe else "primary", id="run", compact=True)
                yield Button("Edit (e)", id="edit", compact=True)
                yield Button("Copy (c)", id="copy", compact=True)
                yield Button("Skip (Esc)", id="skip", compact=True)
                yield Button("Always this session (a)", id="always", compact=True)

    def on_mount(self) -> None:
        self.query_one("#skip" if not self.safe else "#run", Button).focus()

    def on_key(self, event) -> None:
        if self.editing:
            return
        mapping = {"r": "run", "e": "edit", "c": "copy", "a": "always", "s": "skip"}
        if event.key in mapping:
            event.stop()
            self.action_choose(mapping[event.key])

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose(event.button.id or "skip")

    def action_choose(self, action: str) -> None:
        if action == "edit":
            self._start_editing()
            return
        code = self.query_one("#editor", TextArea).text if self.editing else self.code
        self.dismiss(RunChoice(action, code))

    def _start_editing(self) -> None:
        if self.editing:
            return
        self.editing = True
        view = self.query_one("#code-view")
        editor = TextArea(self.code, id="editor", soft_wrap=False, tab_behavior="indent", show_line_numbers=True)
        view.remove()
        self.query_one(".box").mount(editor, before=self.query_one(".buttons"))
        editor.focus()
        self.query_one("#edit", Button).disabled = True
        self.notify("Editing: Ctrl+R runs the edited code, Esc skips", timeout=4)
