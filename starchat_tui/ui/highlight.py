"""Code highlighting with Pygments in a theme's colours, as Textual ``Content``.

Textual's own fence highlighter maps tokens onto theme *variables*; a coding assistant's users know and
want real Pygments styles (Monokai, Solarized ...), so each theme names one and we translate its token
styles into Textual style strings once per token type.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from textual.content import Content, Span

TAB_SIZE = 4


@lru_cache(maxsize=64)
def lexer_for(language: str) -> Any:
    """A Pygments lexer for a fence's info string ('' or unknown: plain text)."""
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    name = (language or "").strip().split()[0].lower() if language and language.strip() else "text"
    options = {"stripnl": False, "ensurenl": False, "tabsize": TAB_SIZE}
    try:
        return get_lexer_by_name(name, **options)
    except ClassNotFound:
        return get_lexer_by_name("text", **options)


class CodeStyle:
    """The Textual style string for each Pygments token type under one Pygments style."""

    def __init__(self, pygments_style: str, overrides: dict[str, str] | None = None) -> None:
        from pygments.styles import get_style_by_name
        from pygments.token import string_to_tokentype

        self.name = pygments_style
        self._style = get_style_by_name(pygments_style)
        self.background = self._style.background_color
        self._overrides = {string_to_tokentype(key): value for key, value in (overrides or {}).items()}
        self._cache: dict[Any, str] = {}

    def style_for(self, token_type: Any) -> str:
        cached = self._cache.get(token_type)
        if cached is None:
            cached = self._cache[token_type] = self._compute(token_type)
        return cached

    def _compute(self, token_type: Any) -> str:
        walk = token_type
        while walk is not None:
            if walk in self._overrides:
                return self._overrides[walk]
            walk = walk.parent
        spec = self._style.style_for_token(token_type)
        parts = []
        if spec.get("bold"):
            parts.append("bold")
        if spec.get("italic"):
            parts.append("italic")
        if spec.get("underline"):
            parts.append("underline")
        if spec.get("color"):
            parts.append("#" + spec["color"])
        if spec.get("bgcolor") and spec["bgcolor"].lower() != (self.background or "").lstrip("#").lower():
            parts.append("on #" + spec["bgcolor"])
        return " ".join(parts)

    def highlight(self, code: str, language: str) -> Content:
        """Highlight ``code`` (any number of lines) as one Content."""
        if not code:
            return Content("")
        lexer = lexer_for(language)
        spans: list[Span] = []
        text_parts: list[str] = []
        position = 0
        style_for = self.style_for
        for token_type, value in lexer.get_tokens(code):
            if not value:
                continue
            end = position + len(value)
            style = style_for(token_type)
            if style:
                spans.append(Span(position, end, style))
            text_parts.append(value)
            position = end
        text = "".join(text_parts)
        # Pygments may expand tabs or normalise line ends; what it returns is what we display.
        return Content(text, spans=spans)


@lru_cache(maxsize=16)
def code_style(pygments_style: str, overrides: tuple[tuple[str, str], ...] = ()) -> CodeStyle:
    return CodeStyle(pygments_style, dict(overrides))
