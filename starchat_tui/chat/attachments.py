"""Files and piped input attached to a prompt as fenced code blocks.

Input is read as bytes, refused when it is binary, and wrapped in a fence longer than any backtick run
inside it, so a file that itself contains Markdown fences cannot close the block early.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Past this share of undecodable bytes the input is not text, whatever its encoding claims.
UNDECODABLE_LIMIT = 0.10


class BinaryInput(ValueError):
    """The input holds NUL bytes or is mostly undecodable."""


class EmptyInput(ValueError):
    """The input holds no bytes at all."""


@dataclass
class Attachment:
    """Text attached to a prompt, with the name it came from ('stdin' or a path)."""

    source: str
    text: str
    cut_tokens: int = 0
    # For a file: its resolved path and what it held when attached, so /apply can tell whether it changed since.
    path: str = ""
    digest: str = ""
    fence_language: str | None = None  # when the source names no file to guess from (a git diff)

    @property
    def language(self) -> str:
        return self.fence_language if self.fence_language is not None else guess_language(self.source)

    def as_markdown(self) -> str:
        longest_run = max((len(run) for run in re.findall(r"`{3,}", self.text)), default=2)
        fence = "`" * (longest_run + 1)
        body = self.text if self.text.endswith("\n") else self.text + "\n"
        note = f" (cut: the last {self.cut_tokens} tokens did not fit)" if self.cut_tokens else ""
        return f"{self.source}{note}:\n{fence}{self.language}\n{body}{fence}"


def decode_input(data: bytes, source: str) -> Attachment:
    """Decode raw input as UTF-8 text, refusing binary data and empty input with a reason."""
    if not data:
        raise EmptyInput(f"{source} is empty: there is nothing to attach")
    if b"\x00" in data[:65536]:
        raise BinaryInput(f"{source} looks binary (it holds NUL bytes): attach text files only")
    text = data.decode("utf-8", errors="replace")
    undecodable = text.count("\ufffd") - data.decode("utf-8", errors="ignore").count("\ufffd")
    if undecodable > UNDECODABLE_LIMIT * max(1, len(text)):
        raise BinaryInput(
            f"{source} is not UTF-8 text ({undecodable} of {len(text)} characters undecodable): "
            "convert it with iconv or attach a text file"
        )
    return Attachment(source=source, text=text)


def guess_language(source: str) -> str:
    """A fence language tag from the file name; '' for stdin or an unknown kind of file.

    Guessing from content is wrong too often (Pygments calls `print(1)` scdoc) to be worth a wrong tag.
    """
    if source == "stdin":
        return ""
    from pygments.lexers import get_lexer_for_filename
    from pygments.util import ClassNotFound

    try:
        return get_lexer_for_filename(source).aliases[0]
    except ClassNotFound:
        return ""


def compose_prompt(instruction: str, attachments: list[Attachment]) -> str:
    """The user message: the instruction, then each attachment as a fenced block."""
    blocks = [a.as_markdown() for a in attachments]
    return "\n\n".join(part for part in [instruction.strip(), *blocks] if part)
