"""SVG snapshots of the main screens in two themes (pytest-textual-snapshot).

A snapshot needs the same pixels every run, so the things that legitimately change are pinned here: the
session ids (random) and the clock (the sessions list shows dates). The chat is read from a real store and
the status line is filled by the real engine. Update with: pytest tests/test_ui_snapshots.py --snapshot-update
"""

from __future__ import annotations

import itertools

import pytest

from starchat_tui.config import load_settings

SIZE = (100, 34)

CONVERSATION = [
    ("user", "Write a function that reverses a string, and show how to call it."),
    ("assistant", "Use slicing with a step of -1:\n\n```python\ndef reverse(text):\n    \"\"\"Return text backwards.\"\"\"\n"
                  "    return text[::-1]\n\n\nprint(reverse(\"starchat\"))  # tahcrats\n```\n\n"
                  "It works for any `str`, including empty ones."),
    ("user", "And in bash?"),
    ("assistant", "```bash\necho \"starchat\" | rev\n```\n\nThis needs `rev` from util-linux; it is"),
]


@pytest.fixture
def pinned_store(monkeypatch):
    """A real store whose ids and clock are fixed, holding one finished and one interrupted answer."""
    from starchat_tui.store import SessionStore, sessions

    counter = itertools.count(1)

    class CountingSecrets:
        @staticmethod
        def token_hex(_bytes: int) -> str:
            return f"5e55{next(counter):04x}"

    monkeypatch.setattr(sessions, "secrets", CountingSecrets)
    monkeypatch.setattr(sessions, "now", lambda: "2026-03-14T12:00:00.000000+00:00")
    store = SessionStore()
    for title in ("parse a CSV file with pandas", "why is my regex slow?"):
        old = store.create_session("tiny")
        store.add_message(old.id, "user", title)
        store.add_message(old.id, "assistant", "…")
    session = store.create_session("tiny", settings={"temperature": 0})
    for role, content in CONVERSATION:
        extra = {"interrupted": True} if content.endswith("it is") else {}
        store.add_message(session.id, role, content, **extra)
    return store, session.id


@pytest.fixture(scope="module")
def tiny_engine(tiny_model):
    from starchat_tui.engine import load_engine

    return load_engine(tiny_model, device="cpu")


def chat_app(tiny_model, tiny_engine, store, session_id, theme):
    from starchat_tui.ui.launch import build_app

    settings = load_settings({"model": tiny_model, "theme": theme})
    return build_app(settings, session_id=session_id, store=store, engine=tiny_engine)


async def settle(pilot) -> None:
    """Wait for the engine and the context count (a worker thread), and stop the cursor blinking."""
    import asyncio

    app = pilot.app
    for _ in range(500):
        if app.engine is not None and app.chat_screen.status_line.context is not None:
            break
        await asyncio.sleep(0.01)
    app.chat_screen.prompt.cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("theme", ["starchat-dark", "starchat-light"])
def test_chat_screen(snap_compare, tiny_model, tiny_engine, pinned_store, theme):
    store, session_id = pinned_store
    app = chat_app(tiny_model, tiny_engine, store, session_id, theme)
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


@pytest.mark.parametrize("theme", ["starchat-dark", "starchat-light"])
def test_sessions_screen(snap_compare, tiny_model, tiny_engine, pinned_store, theme):
    store, session_id = pinned_store
    app = chat_app(tiny_model, tiny_engine, store, session_id, theme)

    async def open_sessions(pilot) -> None:
        await settle(pilot)
        await pilot.press("ctrl+o")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_sessions)


def test_run_dialog_high_contrast(snap_compare, tiny_model, tiny_engine, pinned_store, monkeypatch):
    from starchat_tui.sandbox import probe_backend

    monkeypatch.setenv("STARCHAT_TUI_SANDBOX_BACKEND", "none")  # the dialog as it looks without a sandbox
    probe_backend.cache_clear()
    store, session_id = pinned_store
    app = chat_app(tiny_model, tiny_engine, store, session_id, "starchat-high-contrast")

    async def ask_to_run(pilot) -> None:
        await settle(pilot)
        app.chat_screen.prompt.text = "/run 1"
        await pilot.press("enter")
        for _ in range(300):
            if type(app.screen).__name__ == "RunCodeScreen":
                break
            await pilot.pause(0.01)
        await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=ask_to_run)
    finally:
        probe_backend.cache_clear()
