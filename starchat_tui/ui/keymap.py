"""Every key binding the app has, with a stable id, and the user's remaps from config.toml ``[keys]``.

::

    [keys]
    send = "enter"
    newline = ["ctrl+j", "alt+enter"]
    regenerate = "f5"

Ids are what users write; they never change. Textual applies the remaps (``App.set_keymap``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError


@dataclass(frozen=True)
class Key:
    """One remappable binding."""

    id: str
    keys: str
    action: str
    description: str
    where: str  # app | chat | prompt | block | result
    show: bool = False
    priority: bool = False


KEYS: tuple[Key, ...] = (
    Key("quit", "ctrl+q", "quit", "Quit", "app", show=True, priority=True),
    Key("help", "f1", "help", "Keys and commands", "app", show=True),
    Key("sessions", "ctrl+o", "sessions", "Saved sessions", "app", show=True),
    Key("new_chat", "ctrl+n", "new_chat", "New chat", "app"),
    Key("stop", "escape,ctrl+c", "stop", "Stop the answer", "chat", show=True, priority=True),
    Key("regenerate", "alt+r", "regenerate", "Regenerate the last answer", "chat"),
    Key("edit_last", "alt+e", "edit_last", "Edit and resend the last message", "chat"),
    Key("fork", "alt+f", "fork", "Fork the chat into a new session", "chat"),
    Key("clear", "ctrl+l", "clear", "Clear (start a fresh session)", "chat"),
    Key("system_prompt", "alt+s", "system_prompt", "Edit the system prompt", "chat"),
    Key("block_prev", "alt+up", "block_prev", "Previous code block", "chat"),
    Key("block_next", "alt+down", "block_next", "Next code block", "chat"),
    # Not priority bindings: a priority binding runs when the key reaches the app, before the prompt has
    # processed the keys typed just ahead of it, and Enter would send a half-typed message.
    Key("send", "enter", "send", "Send", "prompt", show=True),
    Key("newline", "ctrl+j,alt+enter,shift+enter", "newline", "Newline", "prompt", show=True),
    Key("complete", "tab", "complete", "Complete the command", "prompt"),
    Key("history_search", "ctrl+r", "history_search", "Search prompt history", "prompt"),
    Key("block.copy", "c", "block('copy')", "Copy", "block", show=True),
    Key("block.save", "s", "block('save')", "Save", "block", show=True),
    Key("block.run", "r", "block('run')", "Run", "block", show=True),
    Key("block.apply", "a", "block('apply')", "Apply to a file", "block", show=True),
    Key("block.back", "escape,i", "back", "Back to the prompt", "block", show=True),
    Key("result.explain", "e", "explain", "Send to the model", "result", show=True),
    Key("result.copy", "c", "copy_output", "Copy output", "result", show=True),
    Key("result.back", "escape,i", "back", "Back to the prompt", "result", show=True),
)

KEY_IDS = {key.id for key in KEYS}
_KEY_NAME = re.compile(r"^[a-z0-9_+\-]+$|^.$")


def bindings(where: str) -> list[Any]:
    """Textual Bindings for one place in the app."""
    from textual.binding import Binding

    return [
        Binding(key.keys, key.action, key.description, show=key.show, priority=key.priority, id=key.id)
        for key in KEYS
        if key.where == where
    ]


def parse_keymap(section: Mapping[str, Any]) -> dict[str, str]:
    """The ``[keys]`` table as a Textual keymap; unknown ids and malformed keys are usage errors."""
    keymap: dict[str, str] = {}
    for key_id, value in section.items():
        if key_id not in KEY_IDS:
            import difflib

            close = difflib.get_close_matches(key_id, sorted(KEY_IDS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known ids: {', '.join(sorted(KEY_IDS))}"
            raise UsageError(f"config.toml [keys]: unknown key id {key_id!r}: {hint}")
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise UsageError(
                f'config.toml [keys]: {key_id} must be a key or a list of keys, for example {key_id} = "ctrl+g"'
            )
        parts = [part.strip().lower() if len(part.strip()) > 1 else part.strip()
                 for name in names for part in name.split(",")]
        bad = [part for part in parts if not _KEY_NAME.match(part)]
        if bad:
            raise UsageError(
                f"config.toml [keys]: {key_id} = {bad[0]!r} is not a key name; write keys like \"ctrl+g\", "
                "\"alt+enter\", \"f5\""
            )
        keymap[key_id] = ",".join(parts)
    return keymap


def describe(key_id: str, keymap: Mapping[str, str]) -> str:
    """The keys currently bound to an id, for help text: 'ctrl+j, alt+enter'."""
    keys = keymap.get(key_id) or next(key.keys for key in KEYS if key.id == key_id)
    return ", ".join(keys.split(","))
