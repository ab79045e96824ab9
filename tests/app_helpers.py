"""What the app tests share: polling for a state, starting the app on a model, asking, and reading the screen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starchat_tui.config import load_settings

SIZE = (100, 36)


async def wait_until(pilot, predicate, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` while the app runs. (Not pilot.pause: it waits for every widget to drain its
    queue, which during streaming can be the whole answer, and a state in between would be missed.)"""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{screen_text(pilot.app)}")
        await asyncio.sleep(0.01)


class Paced:
    """The real engine, with each streamed chunk held back a little: on an idle machine a tiny model can
    finish 900 tokens before a test gets to press a key, and these tests need an answer in flight."""

    def __init__(self, engine, delay: float = 0.004) -> None:
        self._engine = engine
        self._delay = delay

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def stream(self, conversation, **options):
        import time

        for chunk in self._engine.stream(conversation, **options):
            time.sleep(self._delay)
            yield chunk


def make_app(model: str, engine=None, *, generation=None, store=None, **kwargs):
    from starchat_tui.ui.launch import build_app

    settings = load_settings({"model": model, "generation": generation or {"temperature": 0}})
    return build_app(settings, engine=engine, store=store, **kwargs)


async def ready(pilot) -> None:
    await wait_until(pilot, lambda: pilot.app.engine is not None and pilot.app.chat_screen.is_mounted,
                     what="the engine")
    await pilot.pause()


async def ask(pilot, text: str) -> None:
    screen = pilot.app.chat_screen
    before = len(screen.chat.messages)
    screen.prompt.text = text
    await pilot.press("enter")
    await wait_until(pilot, lambda: len(screen.chat.messages) >= before + 2 and not screen.generating,
                     what="the answer")
    await pilot.pause()


def screen_text(app) -> str:
    """What the terminal shows now, as plain text lines (the screen's composited strips)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@asynccontextmanager
async def running_app(model: str, engine=None, *, size=SIZE, **kwargs) -> AsyncIterator:
    """The app on ``model`` (with ``engine`` already loaded, if given), running under Pilot and ready to chat."""
    app = make_app(model, engine, **kwargs)
    async with app.run_test(size=size) as pilot:
        await ready(pilot)
        yield pilot
