"""Finding the code in a model's answer.

Chat models wrap code in Markdown fences, sometimes several (the function, then an example), sometimes
with a language tag other than ``python``, sometimes never closing the last one because generation hit
its token limit. The block that defines the function under test wins; then the first Python-looking
block; then, for an answer with no fence at all, the whole answer if it is valid Python.
"""

from __future__ import annotations

import re

# An opening fence at the start of a line, its info string, the body, and the closing fence or the end.
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([^\n`]*)\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
PYTHON_TAGS = ("", "python", "py", "python3", "py3", "pycon", "ipython")


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block as ``(language tag, code)``, in order; an unclosed last block runs to the end."""
    blocks = []
    for match in _FENCE.finditer(text):
        tag = match.group(2).strip().split()[0].lower() if match.group(2).strip() else ""
        blocks.append((tag, match.group(3).rstrip("\n") + "\n"))
    return blocks


def _defines(code: str, name: str) -> bool:
    return re.search(rf"^\s*(async\s+)?def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None


def is_python(code: str) -> bool:
    try:
        compile(code, "<answer>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def extract_code(text: str, entry_point: str | None = None) -> str | None:
    """The code to test from ``text``, or None when the answer holds no code."""
    blocks = code_blocks(text)
    python = [code for tag, code in blocks if tag in PYTHON_TAGS]
    if entry_point:
        for code in python + [code for tag, code in blocks if tag not in PYTHON_TAGS]:
            if _defines(code, entry_point):
                return code
    if python:
        return python[0]
    if blocks:
        return None  # only blocks in other languages: nothing to run as Python
    stripped = text.strip()
    if stripped and is_python(stripped) and (entry_point is None or _defines(stripped, entry_point)):
        return stripped + "\n"
    return None
