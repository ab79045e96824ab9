"""Slash commands and palette entries: one table of what the chat can do, with parsing and completion.

Each slash command names a ``slash_<name>`` method of the chat screen that takes the rest of the line.
Every command is also in the command palette (Ctrl+P), so nothing needs to be memorised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import UsageError


@dataclass(frozen=True)
class SlashCommand:
    name: str
    usage: str
    help: str
    takes_argument: bool = False
    choices: tuple[str, ...] = ()  # completions for the first argument, when fixed


SLASH_COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("help", "/help", "keys and commands"),
    SlashCommand("model", "/model NAME", "switch to another model (a Hub id or a folder)", True),
    SlashCommand("system", "/system [TEXT]", "set this chat's system prompt (no text: edit it)", True),
    SlashCommand("set", "/set KEY VALUE", "set a generation setting for this chat (no value: back to default)", True,
                 ("temperature", "top_k", "top_p", "max_new_tokens", "repetition_penalty", "do_sample", "seed")),
    SlashCommand("show", "/show prompt|params|template", "show the exact prompt, the settings or the template", True,
                 ("prompt", "params", "template")),
    SlashCommand("retry", "/retry", "regenerate the last answer"),
    SlashCommand("edit", "/edit", "edit the last message and send it again"),
    SlashCommand("fork", "/fork [TURN]", "copy the chat up to TURN (default: all) into a new session", True),
    SlashCommand("copy", "/copy [N]", "copy code block N (no N: the last answer)", True),
    SlashCommand("save", "/save N [PATH]", "save code block N to a file", True),
    SlashCommand("run", "/run N", "run code block N in the sandbox (asks first)", True),
    SlashCommand("export", "/export [md|json|jsonl] [PATH]", "write this chat to a file", True, ("md", "json", "jsonl")),
    SlashCommand("clear", "/clear", "start a fresh session (this one stays saved)"),
    SlashCommand("new", "/new", "start a fresh session (same as /clear)"),
    SlashCommand("sessions", "/sessions", "open, rename, delete and search saved sessions"),
    SlashCommand("theme", "/theme NAME", "switch the theme (it is remembered)", True),
    SlashCommand("quit", "/quit", "quit"),
)

BY_NAME = {command.name: command for command in SLASH_COMMANDS}


def is_command(text: str) -> bool:
    """A message is a command when it starts with / and the first word is not a path like /usr/bin."""
    stripped = text.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return False
    word = stripped[1:].split(maxsplit=1)[0] if len(stripped) > 1 else ""
    return "/" not in word


def parse(text: str) -> tuple[SlashCommand, str]:
    """Split ``/name rest`` into the command and its argument text."""
    name, _, rest = text.strip()[1:].partition(" ")
    command = BY_NAME.get(name.lower())
    if command is None:
        import difflib

        close = difflib.get_close_matches(name.lower(), BY_NAME, n=1)
        hint = f"did you mean /{close[0]}?" if close else "type /help for the list"
        raise UsageError(f"unknown command /{name}: {hint} (start with // to send a message that begins with /)")
    if rest.strip() and not command.takes_argument:
        raise UsageError(f"/{command.name} takes no argument: {command.usage}")
    return command, rest.strip()


@dataclass(frozen=True)
class Completion:
    value: str  # the whole prompt text after completing
    label: str
    help: str


def complete(text: str, dynamic: Callable[[str], Iterable[str]] | None = None) -> list[Completion]:
    """Completions for a prompt that is a command being typed; [] when it is not one.

    ``dynamic(command_name)`` supplies argument choices that depend on the app (themes, block numbers).
    """
    if not text.startswith("/") or "\n" in text:
        return []
    head, space, rest = text[1:].partition(" ")
    if not space:
        return [
            Completion(f"/{c.name}" + (" " if c.takes_argument else ""), c.usage, c.help)
            for c in SLASH_COMMANDS
            if c.name.startswith(head.lower())
        ]
    command = BY_NAME.get(head.lower())
    if command is None or " " in rest:
        return []
    choices = list(command.choices) + list(dynamic(command.name) if dynamic else ())
    return [
        Completion(f"/{command.name} {choice}", choice, command.help)
        for choice in dict.fromkeys(choices)
        if choice.startswith(rest) and choice != rest
    ]


@dataclass(frozen=True)
class PaletteEntry:
    title: str
    help: str
    action: str  # an action on the chat screen


PALETTE: tuple[PaletteEntry, ...] = (
    PaletteEntry("Stop the answer", "stop generating (Esc, Ctrl+C)", "stop"),
    PaletteEntry("Regenerate the last answer", "drop the last answer and ask again (/retry)", "regenerate"),
    PaletteEntry("Edit and resend the last message", "put the last message back in the prompt (/edit)", "edit_last"),
    PaletteEntry("Fork this chat", "copy the chat into a new session and continue there (/fork)", "fork"),
    PaletteEntry("Clear: start a fresh session", "this chat stays saved (/clear)", "clear"),
    PaletteEntry("New chat", "start a fresh session (Ctrl+N)", "app.new_chat"),
    PaletteEntry("Saved sessions", "open, rename, delete or search (Ctrl+O)", "app.sessions"),
    PaletteEntry("Export this chat", "write it as Markdown, JSON or JSONL (/export)", "export"),
    PaletteEntry("Edit the system prompt", "this chat's system prompt (/system)", "system_prompt"),
    PaletteEntry("Generation settings", "temperature, top_p, max_new_tokens ... for this chat (/set)", "edit_settings"),
    PaletteEntry("Switch model", "load another model (/model)", "switch_model"),
    PaletteEntry("Copy a code block", "to the clipboard (/copy N)", "pick_block('copy')"),
    PaletteEntry("Save a code block", "to a file (/save N PATH)", "pick_block('save')"),
    PaletteEntry("Run a code block", "in the sandbox, after you confirm (/run N)", "pick_block('run')"),
    PaletteEntry("Copy the last answer", "the whole answer as Markdown (/copy)", "copy_answer"),
    PaletteEntry("Show the prompt", "exactly what the model sees (/show prompt)", "show('prompt')"),
    PaletteEntry("Show the generation settings", "(/show params)", "show('params')"),
    PaletteEntry("Show the chat template", "(/show template)", "show('template')"),
    PaletteEntry("Search prompt history", "reuse something you asked before (Ctrl+R)", "history_search"),
    PaletteEntry("Keys and commands", "(F1, /help)", "app.help"),
)
