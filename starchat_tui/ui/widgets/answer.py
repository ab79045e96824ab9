"""An assistant answer: Markdown with numbered code fences, streamed in place, stopped or finished.

The answer's source of truth is the conversation (raw text); the widget only ever sees the inert form of
it, so an escape sequence in model output is shown, never sent to the terminal.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from ...chat.inert import make_inert
from .code_fence import CodeFence


class AnswerMarkdown(Markdown):
    """Markdown whose fences are :class:`CodeFence`, numbered from ``first_block``."""

    BLOCKS = {**Markdown.BLOCKS, "fence": CodeFence, "code_block": CodeFence}

    def __init__(self, markdown: str = "", *, first_block: int = 1, streaming: bool = False) -> None:
        super().__init__(markdown)
        self.first_block = first_block
        self.streaming = streaming

    def finish_stream(self) -> None:
        self.streaming = False
        for fence in self.query(CodeFence):
            fence.finish()


class AssistantMessage(Vertical):
    """One answer with a title line and a footer that says how it ended."""

    def __init__(
        self,
        content: str = "",
        *,
        title: str = "assistant",
        first_block: int = 1,
        interrupted: bool = False,
        footer: str = "",
        streaming: bool = False,
    ) -> None:
        super().__init__(classes="message assistant")
        self._content = content
        self._title = title
        self._first_block = first_block
        self._footer = footer
        self._streaming = streaming
        self.set_class(interrupted, "-interrupted")
        self.set_class(streaming, "-streaming")

    def compose(self) -> ComposeResult:
        yield Static(self._title, classes="title", markup=False)
        yield AnswerMarkdown(make_inert(self._content), first_block=self._first_block, streaming=self._streaming)
        footer = self._footer_text(self.has_class("-interrupted"), self._footer)
        yield Static(footer, classes="footer" if footer else "footer -empty", markup=False)

    @property
    def markdown(self) -> AnswerMarkdown:
        return self.query_one(AnswerMarkdown)

    def start_stream(self) -> MarkdownStream:
        self.markdown.streaming = True
        self.add_class("-streaming")
        return Markdown.get_stream(self.markdown)

    async def end_stream(self, stream: MarkdownStream, *, interrupted: bool, footer: str) -> None:
        await stream.stop()
        self.markdown.finish_stream()
        self.remove_class("-streaming")
        self.set_class(interrupted, "-interrupted")
        text = self._footer_text(interrupted, footer)
        line = self.query_one(".footer", Static)
        line.update(text)
        line.set_class(not text, "-empty")

    @staticmethod
    def _footer_text(interrupted: bool, footer: str) -> str:
        parts = (["■ interrupted"] if interrupted else []) + ([footer] if footer else [])
        return "  ·  ".join(parts)
