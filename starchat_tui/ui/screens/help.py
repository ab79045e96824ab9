"""Keys and slash commands, as they are bound right now (user remaps included)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from ...session.commands import help_lines
from .. import keymap


def help_text(user_keymap: dict[str, str]) -> Content:
    lines: list[tuple[str, str] | str] = [("Keys\n", "bold $primary")]
    places = {"app": "anywhere", "chat": "in the chat", "prompt": "in the prompt",
              "block": "on a code block (Alt+↑/↓ to reach one)", "result": "on a run's output"}
    for where, title in places.items():
        lines.append((f"  {title}\n", "$text-muted"))
        for key in keymap.KEYS:
            if key.where == where:
                lines.append(f"    {keymap.describe(key.id, user_keymap):<36} {key.description}  ")
                lines.append((f"[{key.id}]\n", "$text-muted"))
    lines.append(f"    {'ctrl+p':<36} Command palette: every action, themes\n")
    lines.append(("\nSlash commands\n", "bold $primary"))
    lines += [f"  {line}\n" for line in help_lines()]
    lines.append(("\nRemap keys in config.toml, for example:\n", "$text-muted"))
    lines.append('  [keys]\n  regenerate = "f5"\n  newline = ["ctrl+j", "alt+enter"]\n')
    return Content.assemble(*lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1", "close", "Close")]

    def __init__(self, user_keymap: dict[str, str]) -> None:
        super().__init__(classes="dialog")
        self.user_keymap = user_keymap

    def compose(self) -> ComposeResult:
        with Vertical(classes="box -wide -tall"):
            with VerticalScroll():
                yield Static(help_text(self.user_keymap), id="help-text")
            yield Static("Esc closes", classes="hint")

    def action_close(self) -> None:
        self.dismiss(None)
