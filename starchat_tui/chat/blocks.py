"""The numbered code blocks of a conversation: what ``/copy N``, ``/save N`` and ``/run N`` refer to.

Blocks are found with the same Markdown parser the answer widgets use, so block N in a command is the
block the screen labels N. Numbering runs through the assistant's answers in order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .conversation import is_summary

# Pygments/fence names mapped to file extensions, for suggested file names when saving a block.
EXTENSIONS = {
    "python": "py", "py": "py", "python3": "py", "bash": "sh", "sh": "sh", "shell": "sh", "zsh": "sh",
    "console": "txt", "javascript": "js", "js": "js", "typescript": "ts", "ts": "ts", "rust": "rs",
    "go": "go", "c": "c", "cpp": "cpp", "c++": "cpp", "java": "java", "ruby": "rb", "json": "json",
    "yaml": "yaml", "yml": "yaml", "toml": "toml", "html": "html", "css": "css", "sql": "sql",
    "markdown": "md", "md": "md", "dockerfile": "Dockerfile", "makefile": "Makefile", "r": "R",
}


@dataclass(frozen=True)
class CodeBlock:
    """One fenced (or indented) code block in an answer."""

    number: int
    language: str
    code: str
    message_index: int
    info: str = ""  # the whole fence info string (```python app.py): /apply reads a file name from it

    @property
    def line_count(self) -> int:
        return self.code.count("\n") + 1 if self.code else 0

    def suggested_name(self) -> str:
        extension = EXTENSIONS.get(self.language.lower(), "txt") if self.language else "txt"
        if extension in ("Dockerfile", "Makefile"):
            return extension
        return f"block{self.number}.{extension}"


def fence_language(info: str) -> str:
    """The language tag of a fence info string (```python title="x"``` -> python)."""
    return info.strip().split()[0] if info and info.strip() else ""


@lru_cache(maxsize=512)
def blocks_in(text: str) -> tuple[tuple[str, str, str], ...]:
    """(language, code, fence info) of each code block in one Markdown text, in document order."""
    from markdown_it import MarkdownIt

    found = []
    for token in MarkdownIt("gfm-like").parse(text):
        if token.type in ("fence", "code_block"):
            found.append((fence_language(token.info), token.content.rstrip("\n"), token.info.strip()))
    return tuple(found)


def number_blocks(messages: Sequence[Mapping[str, Any]]) -> list[CodeBlock]:
    """Every code block in the assistant messages, numbered from 1."""
    numbered: list[CodeBlock] = []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant" or is_summary(message):
            continue
        for language, code, info in blocks_in(str(message.get("content") or "")):
            numbered.append(CodeBlock(len(numbered) + 1, language, code, index, info))
    return numbered


def blocks_before(messages: Sequence[Mapping[str, Any]], message_index: int) -> int:
    """How many blocks the answers before ``message_index`` hold: the first number of that message's blocks."""
    return sum(
        len(blocks_in(str(m.get("content") or "")))
        for m in messages[:message_index]
        if m.get("role") == "assistant" and not is_summary(m)
    )
