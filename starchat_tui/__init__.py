"""starchat-tui: a local-first coding assistant for the terminal.

The public API is small and imports nothing heavy until it is used::

    from starchat_tui import Conversation, load_engine
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Conversation", "Engine", "load_engine", "__version__"]

if TYPE_CHECKING:
    from .chat.conversation import Conversation
    from .engine import Engine, load_engine


def __getattr__(name: str) -> Any:
    # The engine pulls in torch and transformers; `starchat-tui --help` must not pay for that.
    if name == "Conversation":
        from .chat.conversation import Conversation

        return Conversation
    if name in ("Engine", "load_engine"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'starchat_tui' has no attribute {name!r}")
