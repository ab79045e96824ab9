"""Starting the chat app from the command line: settings checked, session chosen, terminal reattached.

Everything that can be wrong with the user's input (a theme that does not exist, a bad ``[keys]`` table,
an unknown session id) is reported before the screen switches to the full-screen app, as one line with
the fix and exit code 2.

A prompt given on the command line is sent at once (``starchat-tui "explain this" < x.py``: the user has
already said what to ask). Piped input alone is attached and waits: the user writes the question and
presses Enter.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from ..config import Settings
    from ..engine.protocol import ChatEngine
    from ..store import SessionStore
    from .app import StarchatApp


def reattach_terminal() -> None:
    """After the lead's CLI drained a pipe on stdin, read keys from the terminal instead (Textual uses fd 0)."""
    if os.isatty(0):
        return
    try:
        tty = os.open("/dev/tty", os.O_RDWR | getattr(os, "O_NOCTTY", 0))
    except OSError:
        raise UsageError(
            "no terminal to read keys from (stdin was piped and /dev/tty cannot be opened): "
            "use -p to print an answer instead"
        ) from None
    os.dup2(tty, 0)
    os.close(tty)


def build_app(settings: Settings, instruction: str = "", attachments: list | None = None, *,
              session_id: str | None = None, continue_last: bool = False, overrides: Collection[str] = (),
              store: SessionStore | None = None, engine: ChatEngine | None = None) -> StarchatApp:
    """The app, ready to run; raises UsageError for anything in the settings or arguments it cannot use."""
    from ..session.chat_session import ChatSession
    from ..store import SessionStore
    from .app import StarchatApp
    from .keymap import parse_keymap
    from .themes import check_theme_name, load_themes

    catalog = load_themes()
    check_theme_name(settings.theme, catalog)
    user_keymap = parse_keymap(settings.section("keys"))
    store = store or SessionStore()
    chat = ChatSession.choose(store, settings, session_id=session_id, continue_last=continue_last,
                              overrides=overrides)
    return StarchatApp(
        settings, chat, catalog=catalog, user_keymap=user_keymap, instruction=instruction,
        attachments=list(attachments or []), send_first=bool(instruction.strip()), engine=engine,
    )


def run_app(settings: Settings, instruction: str, attachments: list, *, session_id: str | None = None,
            continue_last: bool = False, overrides: Collection[str] = ()) -> int:
    """Run the chat app until the user quits; returns the exit code."""
    app = build_app(settings, instruction, attachments, session_id=session_id, continue_last=continue_last,
                    overrides=overrides)
    reattach_terminal()
    app.run()
    return app.return_code or 0
