"""The command palette's entries (Ctrl+P): every action of the chat, so nothing needs to be memorised.

Most entries are slash commands from the one registry; the rest are screen actions that choose something
first (a turn, a block) and then run one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaletteEntry:
    title: str
    help: str
    action: str  # an action on the chat screen


def _command(text: str) -> str:
    return f"command({text!r})"


PALETTE: tuple[PaletteEntry, ...] = (
    PaletteEntry("Stop the answer", "stop generating (Esc, Ctrl+C)", "stop"),
    PaletteEntry("Regenerate the last answer", "drop the last answer and ask again (/retry)", _command("/retry")),
    PaletteEntry("Edit and resend the last message", "put the last message back in the prompt (/edit)", _command("/edit")),
    PaletteEntry("Fork this chat", "copy the chat into a new session and continue there (/fork)", "fork"),
    PaletteEntry("Clear: start a fresh session", "this chat stays saved (/clear)", _command("/clear")),
    PaletteEntry("New chat", "start a fresh session (Ctrl+N)", "app.new_chat"),
    PaletteEntry("Saved sessions", "open, rename, delete or search (Ctrl+O)", "app.sessions"),
    PaletteEntry("Export this chat", "write it as Markdown, JSON or JSONL (/export)", _command("/export")),
    PaletteEntry("Edit the system prompt", "this chat's system prompt (/system)", _command("/system")),
    PaletteEntry("Generation settings", "temperature, top_p, max_new_tokens ... for this chat (/settings)",
                 _command("/settings")),
    PaletteEntry("Switch model", "load another model (/model)", _command("/model")),
    PaletteEntry("Copy a code block", "to the clipboard (/copy N)", "pick_block('copy')"),
    PaletteEntry("Save a code block", "to a file (/save N PATH)", "pick_block('save')"),
    PaletteEntry("Run a code block", "in the sandbox, after you confirm (/run N)", "pick_block('run')"),
    PaletteEntry("Copy the last answer", "the whole answer as Markdown (/copy)", _command("/copy")),
    PaletteEntry("Show the prompt", "exactly what the model sees (/show prompt)", _command("/show prompt")),
    PaletteEntry("Show the generation settings", "(/show params)", _command("/show params")),
    PaletteEntry("Show the chat template", "(/show template)", _command("/show template")),
    PaletteEntry("Search prompt history", "reuse something you asked before (Ctrl+R)", "history_search"),
    PaletteEntry("Keys and commands", "(F1, /help)", "app.help"),
)
