"""A numbered code block with copy, save, run and apply, highlighted in the theme's Pygments style.

Textual's fence re-highlights and re-renders the whole block each time its answer grows, so an answer
that is one long code block costs O(n^2) while it streams, and each flush stalls the UI for longer. This
fence does O(new text) work per flush instead:

- only lines completed since the last flush are highlighted (the unfinished last line shows plain);
- the lines are drawn one at a time (:class:`CodeLines`, Textual's line API) and each drawn line is kept,
  so a flush draws only the lines that changed, and only those on screen: never the whole block, and no
  widget is mounted as it grows.

When the answer ends the whole block is highlighted once, with lexer state that spans lines (a docstring,
say) known from the start.
"""

from __future__ import annotations

from functools import partial

from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static
from textual.widgets.markdown import MarkdownBlock, MarkdownFence

from ...chat.blocks import fence_language
from .. import keymap
from ..highlight import CodeStyle, code_style


def current_code_style(widget) -> CodeStyle:
    """The app's code style for its current theme (the app keeps it in step with the theme)."""
    style = getattr(widget.app, "code_style", None)
    return style if isinstance(style, CodeStyle) else code_style("monokai")


class FenceHeader(Static):
    """The block's number, language and size, and clickable copy / save / run."""

    DEFAULT_CSS = """
    FenceHeader { height: 1; padding: 0 1; }
    """

    def show(self, number: int, language: str, lines: int) -> None:
        label = f" {number} " if number else " · "
        described = f" {language or 'text'} · {lines} line{'s' if lines != 1 else ''}"
        self.update(
            Content.assemble(
                (label, "bold reverse $primary"),
                (described, "$text-muted"),
                "   ",
                Content.from_markup("[@click=block('copy')]copy[/]  [@click=block('save')]save[/]  "
                                    "[@click=block('run')]▶ run[/]  [@click=block('apply')]apply[/]"),
            )
        )

    def action_block(self, kind: str) -> None:
        fence = self.parent
        if isinstance(fence, CodeFence):
            fence.action_block(kind)


WHOLE_IN_THREAD_LINES = 120


class CodeLines(Widget):
    """The lines of a code block, each drawn when it first shows on screen and then kept until it changes."""

    DEFAULT_CSS = """
    CodeLines { width: auto; min-width: 100%; height: auto; padding: 0 2; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._lines: list[Content] = []
        self._drawn: dict[int, Strip] = {}
        self._width = 0
        self.lines_drawn = 0  # how many times a line was drawn: a growing block should add only its new lines

    def show(self, lines: list[Content]) -> None:
        """Show ``lines``; those that are the very objects shown before are not drawn again."""
        shown = self._lines
        same = 0
        for old, new in zip(shown, lines):
            if old is not new:
                break
            same += 1
        if same == len(shown) == len(lines):
            return
        for y in [y for y in self._drawn if y >= same]:
            del self._drawn[y]
        widest = max((line.cell_length for line in lines[same:]), default=0)
        width = widest if same == 0 else max(self._width, widest)
        resized = len(lines) != len(shown) or width != self._width
        self._lines, self._width = lines, width
        self.refresh(layout=resized)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self._width

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self._lines))

    def notify_style_update(self) -> None:
        self._drawn.clear()  # the colours under the code changed
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        strip = self._drawn.get(y)
        if strip is None:
            if y >= len(self._lines):
                return Strip.blank(0)
            line = self._lines[y]
            strip = self._drawn[y] = Strip(line.render_segments(self.visual_style), line.cell_length)
            self.lines_drawn += 1
        return strip


class CodeFence(MarkdownFence):
    """A fence in an answer: numbered, focusable, and cheap to grow while streaming."""

    can_focus = True
    BINDINGS = keymap.bindings("block")

    class Action(Message):
        """The user asked to copy, save, run or apply block ``number``."""

        def __init__(self, number: int, kind: str) -> None:
            super().__init__()
            self.number = number
            self.kind = kind

    class Back(Message):
        """The user wants the prompt back."""

    def __init__(self, markdown, token, code: str) -> None:
        # MarkdownFence.__init__ highlights at once; a streamed fence is built on every flush, so skip it.
        MarkdownBlock.__init__(self, markdown, token)
        self.code = code
        self.lexer = fence_language(token.info)
        self.auto_links = False
        self.number = 0
        self._stable_source = ""  # the complete lines highlighted so far
        self._lines: list[Content] = []  # ... as one Content per line
        self._partial = False  # highlighted line by line, not yet as a whole
        self._style_name: str | None = None
        self._view: CodeLines | None = None  # made on first show: most fences parsed while streaming are thrown away

    # -- highlighting ----------------------------------------------------------------------------------

    def _streaming(self) -> bool:
        return bool(getattr(self._markdown, "streaming", False))

    def _highlight(self, incremental: bool) -> None:
        style = current_code_style(self)
        if style.name != self._style_name or not self.code.startswith(self._stable_source):
            self._stable_source, self._lines = "", []
            self._style_name = style.name
        if not incremental:
            self._partial = False
            self._stable_source = self.code
            self._lines = style.highlight(self.code, self.lexer).split("\n", allow_blank=True) if self.code else []
            return
        cut = self.code.rfind("\n") + 1
        if cut > len(self._stable_source):
            fresh = style.highlight(self.code[len(self._stable_source):cut], self.lexer)
            self._lines.extend(fresh.split("\n"))
            self._stable_source = self.code[:cut]
        self._partial = True

    def _show(self) -> None:
        """Put the highlighted lines (and the unfinished tail) on screen."""
        tail = self.code[len(self._stable_source):]
        if self._view is None:
            self._view = CodeLines()
        self._view.show(self._lines + ([Content(tail)] if tail else []))

    @property
    def _highlighted_code(self) -> Content:
        """The block as shown, in one Content (built on demand: streaming never needs it whole)."""
        tail = self.code[len(self._stable_source):]
        return Content("\n").join(self._lines + ([Content(tail)] if tail else []))

    def finish(self) -> None:
        """The answer ended: highlight the whole block once, with full lexer context.

        A long block is highlighted on a worker thread (Pygments is pure Python: a few thousand lines take
        a noticeable fraction of a second) and swapped in when ready; until then the line-by-line colours
        stay, which are right almost everywhere.
        """
        if not self._partial:
            return
        if self.code.count("\n") < WHOLE_IN_THREAD_LINES or not self.is_mounted:
            self._highlight(incremental=False)
            self._show()
            return
        self.run_worker(partial(self._highlight_whole, self.code, current_code_style(self)),
                        thread=True, group="highlight", exclusive=True, exit_on_error=False)

    def _highlight_whole(self, code: str, style: CodeStyle) -> None:
        lines = style.highlight(code, self.lexer).split("\n", allow_blank=True)
        self.app.call_from_thread(self._use_whole, code, style.name, lines)

    def _use_whole(self, code: str, style_name: str, lines: list[Content]) -> None:
        if code != self.code or style_name != self._style_name or not self._partial:
            return  # the block or the theme changed meanwhile; that path highlighted it already
        self._stable_source, self._lines, self._partial = code, lines, False
        self._show()

    def notify_style_update(self) -> None:
        # Called for every pseudo-class change (focus, hover); re-highlight only when the theme changed.
        if self.is_mounted and current_code_style(self).name != self._style_name:
            self._highlight(incremental=self._streaming() and self._partial)
            self._show()
        MarkdownBlock.notify_style_update(self)

    def _copy_context(self, block: MarkdownBlock) -> None:
        if isinstance(block, MarkdownFence):
            self.code = block.code
            self.lexer = block.lexer
        MarkdownBlock._copy_context(self, block)

    async def _update_from_block(self, block: MarkdownBlock) -> None:
        if isinstance(block, CodeFence):
            self._copy_context(block)
            self._highlight(incremental=self._streaming())
            self._show()
            self._show_header()
        else:
            await MarkdownBlock._update_from_block(self, block)

    # -- layout ----------------------------------------------------------------------------------------

    def compose(self):
        self._highlight(incremental=self._streaming())
        self._show()
        yield FenceHeader()
        yield self._view

    def on_mount(self) -> None:
        markdown = self._markdown
        first = getattr(markdown, "first_block", 1)
        fences = list(markdown.query(CodeFence))
        self.number = first + fences.index(self) if self in fences else 0
        self._show_header()

    def _show_header(self) -> None:
        for header in self.query(FenceHeader):
            header.show(self.number, self.lexer, self.code.count("\n") + 1 if self.code else 0)

    # -- actions ---------------------------------------------------------------------------------------

    def action_block(self, kind: str) -> None:
        self.post_message(self.Action(self.number, kind))

    def action_back(self) -> None:
        self.post_message(self.Back())
