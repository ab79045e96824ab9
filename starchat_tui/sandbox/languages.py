"""Which interpreter runs a snippet: python and the shells built in, others from config.toml.

    [sandbox]
    python = "/usr/bin/python3"          # default: the interpreter starchat-tui runs on

    [sandbox.languages]
    node = ["node"]                      # argv before the snippet file
    ruby = { command = ["ruby", "-w"], extension = ".rb" }
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

ALIASES = {
    "python": "python", "py": "python", "python3": "python",
    "bash": "bash", "shell": "bash", "console": "bash",
    "sh": "sh",
}
BUILTIN_SUFFIXES = {"python": ".py", "bash": ".sh", "sh": ".sh"}
# Extensions some interpreters insist on, for configured languages that do not name one.
KNOWN_SUFFIXES = {
    "node": ".js", "javascript": ".js", "js": ".js", "typescript": ".ts", "ts": ".ts", "deno": ".ts",
    "ruby": ".rb", "perl": ".pl", "lua": ".lua", "r": ".R", "php": ".php", "julia": ".jl", "zsh": ".zsh",
}


@dataclass(frozen=True)
class Language:
    """A resolved language: ``command + [snippet file]`` runs it."""

    name: str
    command: tuple[str, ...]
    suffix: str
    stand_in: str | None = None  # why another interpreter than the one asked for runs it, with the fix

    @property
    def is_python(self) -> bool:
        return self.name == "python"


def _configured(section: dict[str, Any]) -> dict[str, Any]:
    table = section.get("languages", {})
    if not isinstance(table, dict):
        raise UsageError("config.toml [sandbox.languages] must be a table, for example: node = [\"node\"]")
    return {str(name).lower(): value for name, value in table.items()}


def names(section: dict[str, Any]) -> list[str]:
    """Every language name a user may pass to --lang, built-ins first."""
    return ["python", "bash", "sh"] + sorted(set(_configured(section)) - {"python", "bash", "sh"})


def _locate(program: str, where: str) -> str:
    found = program if os.path.isabs(program) and os.access(program, os.X_OK) else shutil.which(program)
    if not found:
        raise UsageError(f"{program}: not found on PATH; install it or fix {where} in config.toml")
    return os.path.abspath(found)


def _python_command(section: dict[str, Any]) -> tuple[str, ...]:
    configured = section.get("python")
    if configured:
        return (_locate(str(configured), "[sandbox] python"),)
    # The app's own interpreter: its packages (matplotlib for plots) are what the user installed for us.
    return (sys.executable or _locate("python3", "[sandbox] python"),)


def resolve(name: str, section: dict[str, Any]) -> Language:
    """The language called ``name`` (``py``, ``shell`` ... are aliases), or a UsageError naming the fix."""
    key = name.strip().lower()
    configured = _configured(section)
    if key in configured:
        entry = configured[key]
        where = f"[sandbox.languages] {key}"
        if isinstance(entry, dict):
            command, suffix = entry.get("command"), entry.get("extension")
        else:
            command, suffix = entry, None
        if isinstance(command, str):
            command = [command]
        if not isinstance(command, list) or not command or not all(isinstance(part, str) for part in command):
            raise UsageError(f"{where} must be a list of strings such as [\"node\"], or a table with command = [...]")
        suffix = suffix or KNOWN_SUFFIXES.get(key, "")
        if suffix and not suffix.startswith("."):
            suffix = "." + suffix
        return Language(key, (_locate(command[0], where), *command[1:]), suffix)
    canonical = ALIASES.get(key)
    if canonical is None:
        raise UsageError(
            f"unknown language {name!r}: use {', '.join(names(section))}, "
            "or add it to [sandbox.languages] in config.toml (for example: node = [\"node\"])"
        )
    if canonical == "python":
        return Language("python", _python_command(section), ".py")
    return Language(canonical, (_locate(canonical, "your PATH"),), BUILTIN_SUFFIXES[canonical])


def for_path(path: str, section: dict[str, Any]) -> str | None:
    """The language a file name suggests (``x.py`` -> python), or None."""
    suffix = os.path.splitext(path)[1].lower()
    for name, builtin_suffix in (("python", ".py"), ("bash", ".sh"), ("bash", ".bash")):
        if suffix == builtin_suffix:
            return name
    for name, entry in _configured(section).items():
        wanted = entry.get("extension") if isinstance(entry, dict) else None
        wanted = (wanted or KNOWN_SUFFIXES.get(name, "")).lower()
        if wanted and suffix == (wanted if wanted.startswith(".") else "." + wanted):
            return name
    return None
