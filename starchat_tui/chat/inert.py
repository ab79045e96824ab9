"""Model output made safe to show: no escape sequence or control character reaches a terminal raw."""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, and the C1 range (8-bit CSI and friends).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _caret(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x1B:
        return "␛"
    if code < 0x20:
        return "^" + chr(code + 0x40)
    return f"\\x{code:02x}"


def make_inert(text: str) -> str:
    """Replace control characters with visible stand-ins (ESC becomes ␛, BEL becomes ^G)."""
    return _CONTROL.sub(_caret, text)
