"""The prompt: a multiline editor where Enter sends, Ctrl+J / Alt+Enter add a line, and Up / Down walk
the prompt history when the cursor is on the first / last line.

A paste arrives as one Paste event, so a pasted multi-line snippet lands in the editor whole and is
never sent line by line.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.actions import SkipAction
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList, TextArea
from textual.widgets.option_list import Option

from ...session.commands import Completion
from .. import keymap


class CompletionMenu(OptionList):
    """Slash-command completions shown above the prompt while a command is typed."""

    can_focus = False

    def __init__(self) -> None:
        super().__init__(id="completions")
        self.completions: list[Completion] = []
        self.display = False

    def show(self, completions: list[Completion]) -> None:
        self.completions = completions
        self.clear_options()
        if completions:
            # Content, not a str: "/save N [PATH]" must not be read as markup.
            self.add_options(Option(Content(f"{c.label:<34} {c.help}")) for c in completions)
            self.highlighted = 0
        self.display = bool(completions)

    def chosen(self) -> Completion | None:
        if not self.display or self.highlighted is None or not self.completions:
            return None
        return self.completions[self.highlighted]


class PromptInput(TextArea):
    """Where the user writes; posts :class:`Submitted` on Enter."""

    BINDINGS = keymap.bindings("prompt")

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class HistorySearch(Message):
        """The user asked to search the prompt history."""

    def __init__(self, history: list[str] | None = None) -> None:
        super().__init__(
            soft_wrap=True, tab_behavior="focus", show_line_numbers=False, id="prompt",
            placeholder="Ask about code · Enter sends · Ctrl+J new line · / commands · Ctrl+P palette",
        )
        self.prompt_history: list[str] = list(history or [])
        self._history_index: int | None = None
        self._draft = ""
        self.menu: CompletionMenu | None = None
        # Asked before a message leaves the editor; False keeps it there (the chat is busy, say).
        self.accepts: Callable[[str], bool] = lambda text: True

    async def _on_key(self, event) -> None:
        # Run this editor's bindings here, in order with the keys around them. Left to Textual, a bound
        # key bubbles up to the app through message queues while the editor goes on inserting the keys
        # typed after it: fast typing (or tmux, or a paste without bracketed paste) would send a
        # half-typed message or put a new line in the wrong place.
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.prevent_default()  # Textual runs every class's _on_key along the MRO: skip TextArea's
                event.stop()
                return

    # -- sending ---------------------------------------------------------------------------------------

    def _completion(self):
        """The highlighted completion, if it still extends what is typed (the menu follows edits a
        message later, so after fast typing it can describe text that is no longer there)."""
        chosen = self.menu.chosen() if self.menu else None
        if chosen is None or not chosen.value.startswith(self.text) or chosen.value.rstrip() == self.text.rstrip():
            return None
        return chosen

    def action_send(self) -> None:
        chosen = self._completion()
        # Enter takes a command's completion; a file's (after @) only Tab takes, so Enter sends what was typed.
        if chosen is not None and self.text.startswith("/"):
            self._apply(chosen)
            if chosen.value.endswith(" "):
                return  # the command wants an argument: let the user type it
        text = self.text
        if not text.strip() or not self.accepts(text):
            return
        # Clear now, not when the screen gets the message: keys typed in between belong to the next one.
        self.remember(text)
        self.clear()
        self.post_message(self.Submitted(text))

    def action_newline(self) -> None:
        self.insert("\n")

    def action_complete(self) -> None:
        chosen = self._completion()
        if chosen is None:
            raise SkipAction()  # Tab moves focus as usual
        self._apply(chosen)

    def _apply(self, completion: Completion) -> None:
        self.text = completion.value
        self.move_cursor(self.document.end)

    # -- history ---------------------------------------------------------------------------------------

    def remember(self, text: str) -> None:
        if not self.prompt_history or self.prompt_history[-1] != text:
            self.prompt_history.append(text)
        self._history_index = None

    def recall(self, text: str) -> None:
        """Put ``text`` in the editor, cursor at the end."""
        self.text = text
        self.move_cursor(self.document.end)

    def action_cursor_up(self, select: bool = False) -> None:
        if self.menu is not None and self.menu.display and not select:
            self.menu.action_cursor_up()
            return
        if select or self.cursor_location[0] > 0 or not self.prompt_history:
            super().action_cursor_up(select)
            return
        if self._history_index is None:
            self._draft = self.text
            self._history_index = len(self.prompt_history)
        if self._history_index > 0:
            self._history_index -= 1
            self.recall(self.prompt_history[self._history_index])
            self.move_cursor((0, len(self.document[0])))

    def action_cursor_down(self, select: bool = False) -> None:
        if self.menu is not None and self.menu.display and not select:
            self.menu.action_cursor_down()
            return
        last_row = self.document.line_count - 1
        if select or self.cursor_location[0] < last_row or self._history_index is None:
            super().action_cursor_down(select)
            return
        self._history_index += 1
        if self._history_index >= len(self.prompt_history):
            self._history_index = None
            self.recall(self._draft)
        else:
            self.recall(self.prompt_history[self._history_index])

    def action_history_search(self) -> None:
        self.post_message(self.HistorySearch())
