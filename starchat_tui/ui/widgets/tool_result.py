"""What a code block printed when the user ran it in the sandbox, with one key to ask the model about it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from ...chat.inert import make_inert
from .. import keymap

if TYPE_CHECKING:
    from ...sandbox.result import Result

# What goes back to the model: enough to explain an error, never a whole log that fills the context.
MAX_FEEDBACK_CHARS = 4000


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit // 2] + f"\n… ({len(text) - limit} characters cut) …\n" + text[-limit // 2:]


def feedback_prompt(number: int, language: str, result: Result) -> str:
    """The message that asks the model to explain a run's output."""
    failed = result.exit_code != 0 or result.timed_out
    status = "timed out" if result.timed_out else f"exited with code {result.exit_code}"
    parts = [f"I ran code block {number} ({language or 'text'}); it {status}."]
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text.strip():
            parts.append(f"{name}:\n```\n{_clip(text.rstrip(), MAX_FEEDBACK_CHARS)}\n```")
    parts.append("Explain this error and how to fix it." if failed else "Explain this output.")
    return "\n\n".join(parts)


class ToolResult(Vertical):
    """The output of one sandbox run, shown inert; focus it and press e to send it to the model."""

    can_focus = True
    BINDINGS = keymap.bindings("result")

    class Explain(Message):
        def __init__(self, prompt: str) -> None:
            super().__init__()
            self.prompt = prompt

    class Copy(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Back(Message):
        """The user wants the prompt back."""

    def __init__(self, number: int, language: str, result: Result) -> None:
        failed = result.exit_code != 0 or result.timed_out
        super().__init__(classes="tool-result" + (" -failed" if failed else ""))
        self.number = number
        self.language = language
        self.result = result

    def compose(self) -> ComposeResult:
        result = self.result
        status = "timed out" if result.timed_out else f"exit {result.exit_code}"
        title = f"▶ block {self.number} · {self.language or 'text'} · {result.backend} · {status} · {result.duration:.2f} s"
        if result.truncated:
            title += " · output truncated"
        yield Static(title, classes="title", markup=False)
        if result.stdout:
            yield Static(Content(make_inert(result.stdout.rstrip("\n"))), classes="stdout")
        if result.stderr:
            yield Static(Content(make_inert(result.stderr.rstrip("\n"))), classes="stderr")
        if not result.stdout and not result.stderr:
            yield Static("(no output)", classes="stdout -empty")
        for why in (result.stopped, result.note):
            if why:
                yield Static(why, classes="stderr", markup=False)
        for index, image in enumerate(result.images or []):
            yield Static(
                Content.assemble(f"image {Path(image).name}  ", Content.from_markup(f"[@click=open_image({index})]open[/]")),
                classes="image",
            )
        yield Static("e: ask the model about this  ·  c: copy the output", classes="hint")

    def output_text(self) -> str:
        return "\n".join(part for part in (self.result.stdout, self.result.stderr) if part)

    def action_explain(self) -> None:
        self.post_message(self.Explain(feedback_prompt(self.number, self.language, self.result)))

    def action_copy_output(self) -> None:
        self.post_message(self.Copy(self.output_text()))

    def action_back(self) -> None:
        self.post_message(self.Back())

    def action_open_image(self, index: int) -> None:
        image = Path(self.result.images[index])
        self.app.open_url(image.resolve().as_uri())
        self.app.notify(f"opened {image}", timeout=3, markup=False)
