"""Run code blocks safely: bubblewrap, else Landlock + seccomp, else nothing (and then only when confirmed).

    from starchat_tui.sandbox import run, Result, Limits, probe_backend
    info = probe_backend()          # .name "bwrap" | "landlock" | "none", .reason, .safe
    result = run("print(1)", "python", timeout=10.0, limits=Limits())

Names are imported lazily so that importing this package costs nothing until a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "run", "Result", "Limits", "probe_backend", "BackendInfo", "UnsafeRunRefused", "SandboxError", "WorkdirUnusable",
    "language_names",
]

if TYPE_CHECKING:
    from .errors import SandboxError, UnsafeRunRefused, WorkdirUnusable
    from .languages import names as language_names
    from .limits import Limits
    from .probe import BackendInfo, probe_backend
    from .result import Result
    from .runner import run

_WHERE = {
    "run": ("runner", "run"),
    "Result": ("result", "Result"),
    "Limits": ("limits", "Limits"),
    "probe_backend": ("probe", "probe_backend"),
    "BackendInfo": ("probe", "BackendInfo"),
    "UnsafeRunRefused": ("errors", "UnsafeRunRefused"),
    "SandboxError": ("errors", "SandboxError"),
    "WorkdirUnusable": ("errors", "WorkdirUnusable"),
    "language_names": ("languages", "names"),
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'starchat_tui.sandbox' has no attribute {name!r}")
    from importlib import import_module

    module, attribute = _WHERE[name]
    return getattr(import_module(f".{module}", __name__), attribute)
