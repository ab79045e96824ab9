"""Copying to the clipboard: the system's clipboard tool when there is one, and OSC 52 always.

OSC 52 asks the terminal to set the clipboard, which works over SSH and in tmux (with set-clipboard on)
but some terminals ignore it; a local clipboard tool works where the terminal does not. Doing both costs
nothing and covers both cases.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable


def system_copy_command() -> list[str] | None:
    """The clipboard tool for this desktop, or None (no display, or no tool installed)."""
    candidates: list[list[str]] = []
    if sys.platform == "darwin":
        candidates.append(["pbcopy"])
    if os.environ.get("WAYLAND_DISPLAY"):
        candidates.append(["wl-copy"])
    if os.environ.get("DISPLAY"):
        candidates += [["xclip", "-selection", "clipboard"], ["xsel", "--clipboard", "--input"]]
    if "microsoft" in os.uname().release.lower() if hasattr(os, "uname") else False:
        candidates.append(["clip.exe"])
    for command in candidates:
        if shutil.which(command[0]):
            return command
    return None


def osc52(text: str) -> str:
    """The escape sequence that asks the terminal to put ``text`` on the clipboard."""
    import base64

    return f"\x1b]52;c;{base64.b64encode(text.encode()).decode()}\a"


def copy_text(send_osc52: Callable[[str], None], text: str) -> str:
    """Copy ``text`` through the terminal (``send_osc52(text)``) and the system's tool; returns how, for the
    message the user sees."""
    send_osc52(text)
    command = system_copy_command()
    if command is None:
        return "via the terminal (OSC 52)"
    try:
        subprocess.run(command, input=text.encode(), check=True, timeout=3,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return "via the terminal (OSC 52)"
    return f"with {command[0]}"
