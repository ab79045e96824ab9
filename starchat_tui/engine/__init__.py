"""Loading models and streaming replies from them.

Importing this package is cheap; torch and transformers load when a model does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Engine", "GenerationStats", "load_engine"]

if TYPE_CHECKING:
    from .engine import Engine, GenerationStats, load_engine


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'starchat_tui.engine' has no attribute {name!r}")
