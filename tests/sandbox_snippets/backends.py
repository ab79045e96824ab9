"""The sandbox backends this machine has, for tests to run on each of them.

A test is generated once per working backend, so a machine without bubblewrap runs everything on the
Landlock fallback instead of skipping it. Only when no backend works does a test skip, and the reason
is what the probe found on this machine. ``STARCHAT_TUI_BWRAP=off`` hides bubblewrap (CI's second run).
"""

from __future__ import annotations

import sys
from functools import cache

import pytest

BACKENDS = ("bwrap", "landlock")


@cache
def _verdicts() -> dict[str, str | None]:
    """backend -> None when it works here, else why not."""
    if not sys.platform.startswith("linux"):
        return {name: f"the sandbox backends are Linux-only, this is {sys.platform}" for name in BACKENDS}
    from starchat_tui.sandbox.probe import _probe, sandbox_identity

    uid, gid = sandbox_identity({})
    verdicts: dict[str, str | None] = {}
    for name in BACKENDS:
        info = _probe(name, uid, gid)
        # unsafe: Landlock before ABI 6 cannot stop a snippet signalling the app
        if info.name != name or not info.safe:
            verdicts[name] = info.reason
        else:
            verdicts[name] = None
    return verdicts


def available(*wanted: str) -> list[str]:
    """The backends among ``wanted`` (default: all) that work on this machine."""
    return [name for name in (wanted or BACKENDS) if _verdicts()[name] is None]


def params(*wanted: str) -> list:
    """pytest params, one per working backend among ``wanted``; a single skipped one when none works."""
    names = available(*wanted)
    if names:
        return names
    why = "; ".join(f"{name}: {_verdicts()[name]}" for name in (wanted or BACKENDS))
    return [pytest.param(None, marks=pytest.mark.skip(reason=f"no working sandbox here ({why})"))]
