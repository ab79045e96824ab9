"""The scrolling transcript: keeps only the newest entries mounted and follows the bottom while you are there.

A session with hundreds of turns would otherwise mount thousands of Markdown blocks, and every layout
pass would walk them all. Entries are kept as factories; the newest ``window`` are mounted, older ones
are mounted back a step at a time when the user scrolls to the top (or clicks the fold), and while the
view follows the bottom, entries that scroll far out of sight are unmounted again.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.containers import VerticalScroll
from textual.widget import Widget

from .messages import EarlierMessages

Factory = Callable[[], Widget]


class Transcript(VerticalScroll):
    """Chat entries, newest at the bottom."""

    def __init__(self, *, window: int = 40, step: int = 20) -> None:
        super().__init__(id="transcript")
        self.window = window
        self.step = step
        self._factories: list[Factory] = []
        self._widgets: list[Widget | None] = []
        self._fold = EarlierMessages()

    def compose(self):
        yield self._fold

    def on_mount(self) -> None:
        self.anchor()
        self._fold.set_count(0)

    @property
    def hidden_count(self) -> int:
        return sum(1 for widget in self._widgets if widget is None)

    async def show(self, factories: list[Factory]) -> None:
        """Replace everything with these entries; mount only the newest window of them."""
        with self.app.batch_update():
            await self.remove_children([w for w in self._widgets if w is not None])
            self._factories = list(factories)
            self._widgets = [None] * len(factories)
            first = max(0, len(factories) - self.window)
            built = [factory() for factory in factories[first:]]
            self._widgets[first:] = built
            if built:
                await self.mount_all(built)
            self._fold.set_count(first)
        self.anchor()

    async def add(self, factory: Factory) -> Widget:
        """Append one entry and return its widget."""
        widget = factory()
        self._factories.append(factory)
        self._widgets.append(widget)
        await self.mount(widget)
        # Textual sets _anchor_released when the user scrolls away from the bottom; prune only while
        # following, so what someone is reading never disappears under them.
        if self.is_anchored and not self._anchor_released:
            await self._prune()
        return widget

    async def remove_from(self, index: int) -> None:
        """Remove entry ``index`` and every entry after it."""
        doomed = [w for w in self._widgets[index:] if w is not None]
        del self._factories[index:]
        del self._widgets[index:]
        await self.remove_children(doomed)

    def entries(self) -> list[Widget | None]:
        return list(self._widgets)

    async def _prune(self) -> None:
        mounted = [i for i, w in enumerate(self._widgets) if w is not None]
        excess = len(mounted) - 2 * self.window
        if excess <= 0:
            return
        doomed_indices = mounted[: len(mounted) - self.window]
        doomed = [self._widgets[i] for i in doomed_indices]
        for index in doomed_indices:
            self._widgets[index] = None
        await self.remove_children(doomed)
        self._fold.set_count(self.hidden_count)

    async def expand(self) -> None:
        """Mount the next ``step`` older entries above what is shown, keeping the view where it was."""
        hidden = [i for i, w in enumerate(self._widgets) if w is None]
        if not hidden:
            return
        chosen = hidden[-self.step:]
        built = [self._factories[i]() for i in chosen]
        for index, widget in zip(chosen, built):
            self._widgets[index] = widget
        before = self.virtual_size.height
        await self.mount_all(built, after=self._fold)
        self._fold.set_count(self.hidden_count)

        def keep_place() -> None:
            self.scroll_to(y=self.scroll_y + self.virtual_size.height - before, animate=False, immediate=True)

        self.call_after_refresh(keep_place)

    async def on_earlier_messages_expand(self, _event: EarlierMessages.Expand) -> None:
        await self.expand()

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new <= 0 and old > 0 and self.hidden_count:
            self.run_worker(self.expand(), exclusive=True, group="expand")

    def follow(self) -> None:
        """Jump to the bottom and follow it again (after the user sends something)."""
        self.anchor()
