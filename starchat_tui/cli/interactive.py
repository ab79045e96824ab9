"""Opening the chat: the full-screen app, or line mode with ``--plain``."""

from __future__ import annotations

import sys
from collections.abc import Collection

from ..chat.attachments import Attachment
from ..config import Settings
from ..errors import UsageError


def open_chat(settings: Settings, instruction: str, attachments: list[Attachment], *, plain: bool,
              session_id: str | None = None, continue_last: bool = False, overrides: Collection[str] = ()) -> int:
    """Run the chat until the user quits; both front-ends reopen the terminal after a drained pipe."""
    if not sys.stdout.isatty():
        raise UsageError("no terminal to open the chat in: use -p to print an answer instead")
    if plain:
        from ..line.chat import run_line_mode

        return run_line_mode(settings, instruction, attachments, session_id, continue_last=continue_last,
                             overrides=overrides)
    from ..ui.launch import run_app

    return run_app(settings, instruction, attachments, session_id=session_id, continue_last=continue_last,
                   overrides=overrides)
