"""The status line: which model runs where, how full the context is, and how fast the last answer came."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

if TYPE_CHECKING:
    from ...session.chat_session import ContextUse

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


class StatusLine(Widget):
    """One line at the bottom of the chat; every field is a reactive the chat screen sets.

    It repaints without a layout pass (its size never changes): a Static's update() re-lays out the whole
    screen, which at the spinner's 10 frames a second costs more than streaming the answer does.
    """

    DEFAULT_CSS = """
    StatusLine { height: 1; width: 1fr; }
    """

    model = reactive("")
    device = reactive("")
    dtype = reactive("")
    loading_step = reactive("")  # the current loading step, '' when not loading
    error = reactive("")
    context: reactive[ContextUse | None] = reactive(None)  # measured by the session, pending attachments included
    tokens_per_s = reactive(0.0)
    cached_tokens = reactive(0)
    generating = reactive(False)
    queued = reactive(0)  # messages typed ahead, waiting for the answer to end
    session = reactive("")

    def __init__(self) -> None:
        super().__init__(id="status")
        self._frame = 0
        self._timer = None

    def on_mount(self) -> None:
        self._timer = self.set_interval(0.1, self._spin, pause=True)
        self.refresh_status()

    def _spin(self) -> None:
        self._frame += 1
        self.refresh_status()

    def _watch_any(self) -> None:
        if self._timer is not None:
            if self.loading_step or self.generating:
                self._timer.resume()
            else:
                self._timer.pause()
        self.refresh_status()

    watch_model = watch_device = watch_dtype = watch_loading_step = watch_error = _watch_any
    watch_context = watch_tokens_per_s = watch_cached_tokens = _watch_any
    watch_generating = watch_session = watch_queued = _watch_any

    def status_text(self) -> Content:
        spinner = SPINNER[self._frame % len(SPINNER)]
        separator = ("  │  ", "$text-muted")
        if self.error:
            left: list = [("✗ ", "bold $error"), (self.error, "$text-error")]
        elif self.loading_step:
            left = [(f"{spinner} ", "$accent"), (self.loading_step, "$text")]
        else:
            left = [("◆ ", "$primary"), (self.model, "bold"), (f" · {self.device} · {self.dtype}", "$text-muted")]
        parts: list = [*left]
        # Most important first: a narrow terminal crops the end of the line.
        if self.generating:
            parts += [separator, (f"{spinner} answering · Esc stops", "$accent")]
        if self.queued:
            parts += [separator, (f"{self.queued} queued", "$text-warning")]
        if self.context is not None:
            share = self.context.share
            colour = "$text-error" if share > 0.9 or self.context.left_out else "$text-warning" if share > 0.75 else "$text"
            parts += [separator, (self.context.short(), colour)]
        if self.tokens_per_s:
            parts += [separator, (f"{self.tokens_per_s:.1f}", "$text"), (" tok/s", "$text-muted")]
        if self.cached_tokens:
            parts += [separator, ("cached ", "$text-muted"), (str(self.cached_tokens), "$text")]
        if self.session:
            parts += [separator, ("session ", "$text-muted"), (self.session, "$text")]
        return Content.assemble(*parts)

    def render(self) -> Content:
        return self.status_text()

    def refresh_status(self) -> None:
        self.refresh()
