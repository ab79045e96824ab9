"""starchat-tui: a local-first coding assistant for the terminal.

The public API is small and imports nothing heavy until it is used::

    from starchat_tui import Conversation, load_engine
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Conversation", "Engine", "load_engine", "__version__"]

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .chat.conversation import Conversation
    from .engine import Engine
    from .engine.protocol import ChatEngine


def load_engine(model: str | None = None, *, endpoints: Mapping[str, Any] | None = None, api: str | None = None,
                **options: Any) -> ChatEngine:
    """Load ``model`` (a Hub id, a local folder, or "demo") into an Engine, or connect to the server it names
    (a URL, or one of ``endpoints``, config.toml's [endpoints] tables; ``api`` says how to talk to it).

    ``options`` are :func:`starchat_tui.engine.load_engine`'s. "demo", the default, is the offline demo model,
    built on first use."""
    from .config import DEMO_MODEL
    from .engine.endpoints import remote_target

    name = model or DEMO_MODEL
    target = remote_target(name, endpoints, api)
    if target is not None:
        from .engine.remote import connect

        return connect(target, options.get("progress"))
    from .demo import resolve_model
    from .engine import load_engine as load

    return load(resolve_model(name, options.get("progress")), **{"name": name, **options})


def __getattr__(name: str) -> Any:
    # The engine pulls in torch and transformers; `starchat-tui --help` must not pay for that.
    if name == "Conversation":
        from .chat.conversation import Conversation

        return Conversation
    if name == "Engine":
        from . import engine

        return engine.Engine
    raise AttributeError(f"module 'starchat_tui' has no attribute {name!r}")
