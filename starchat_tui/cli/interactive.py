"""Opening the chat: the full-screen app, or line mode with ``--plain``."""

from __future__ import annotations

import sys
from collections.abc import Collection
from typing import Any

from ..errors import UsageError


def open_chat(settings: Any, instruction: str, attachments: list, *, plain: bool, session_id: str | None = None,
              continue_last: bool = False, overrides: Collection[str] = ()) -> int:
    """Run the chat until the user quits; both front-ends reopen the terminal after a drained pipe."""
    if not sys.stdout.isatty():
        raise UsageError("no terminal to open the chat in: use -p to print an answer instead")
    if plain:
        from ..repl import run_repl

        if continue_last:
            from ..store import SessionStore

            last = SessionStore().last_session()
            session_id = last.id if last else None
        return run_repl(settings, instruction, attachments, session_id, overrides=list(overrides))
    from ..ui.launch import run_app

    return run_app(settings, instruction, attachments, session_id=session_id, continue_last=continue_last)
