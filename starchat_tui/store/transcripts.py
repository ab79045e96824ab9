"""Transcripts: sessions written out as Markdown, JSON or JSONL, and read back in.

JSON and JSONL are the datasets "messages" format, ``{"messages": [...]}`` (one object per line for
JSONL), exactly what :meth:`Conversation.to_json` writes, so an export is training data as it is.

Markdown is meant for people and still round-trips exactly. Each message's text is written verbatim
between two HTML comments, which Markdown viewers hide::

    ---
    starchat-tui-transcript: 1
    title: "Sorting in Python"
    model: "demo"
    ---

    ### User

    <!-- starchat-tui:message {"role": "user"} -->
    How do I sort a list?
    <!-- starchat-tui:end -->

The reader takes the text between ``...message ...-->\\n`` and ``\\n<!-- starchat-tui:end -->`` as it
is, so code fences, trailing newlines and empty messages survive. A line inside a message that
itself starts with the marker (after any backslashes) gets one more backslash on the way out and loses
it on the way back in. Headings and front matter are for readers; front-matter values are JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..chat.conversation import Conversation, is_summary
from ..errors import UsageError

FORMATS = ("md", "json", "jsonl")
EXTENSIONS = {".md": "md", ".markdown": "md", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}

MARKDOWN_VERSION = 1
VERSION_KEY = "starchat-tui-transcript"
MARKER = "<!-- starchat-tui:"
END_LINE = "<!-- starchat-tui:end -->"
_START = re.compile(r"^<!-- starchat-tui:message (\{.*\}) -->\n", re.MULTILINE)
_ESCAPED = re.compile(r"^(\\*)<!-- starchat-tui:", re.MULTILINE)
_UNESCAPED = re.compile(r"^\\(\\*)<!-- starchat-tui:", re.MULTILINE)
_END = re.compile(r"\n<!-- starchat-tui:end -->(?:\n|\Z)")


@dataclass
class Transcript:
    """One conversation on its way in or out: its messages (system first) and what we know about it."""

    messages: list[dict[str, Any]]
    title: str | None = None
    model: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None
    id: str | None = None


def format_from_extension(path: str | None) -> str | None:
    if path and path != "-":
        for extension, name in EXTENSIONS.items():
            if path.lower().endswith(extension):
                return name
    return None


def format_for(path: str | None, given: str | None) -> str:
    """The format named by ``--format``, else by the file's extension; md when neither says."""
    return given or format_from_extension(path) or "md"


def sniff_format(text: str) -> str:
    """Guess the format of a transcript whose name does not tell: JSON, JSONL or Markdown."""
    start = text.lstrip()
    if start.startswith("["):
        return "json"
    if start.startswith("{"):
        try:
            json.loads(text)
        except json.JSONDecodeError:
            return "jsonl"
        return "json"
    return "md"


# -- writing --------------------------------------------------------------------------------------


def to_json(transcript: Transcript) -> str:
    return Conversation.from_messages(transcript.messages).to_json(indent=2) + "\n"


def to_jsonl(transcripts: Iterable[Transcript]) -> str:
    return "".join(Conversation.from_messages(t.messages).to_json() + "\n" for t in transcripts)


def _escape(content: str) -> str:
    return _ESCAPED.sub(lambda m: "\\" + m.group(1) + MARKER, content)


def _unescape(content: str) -> str:
    return _UNESCAPED.sub(lambda m: m.group(1) + MARKER, content)


def _json_line(value: Any) -> str:
    # "-->" inside a comment would end it early; "\u003e" reads back as the same ">".
    return json.dumps(value, ensure_ascii=False).replace(">", "\\u003e")


def to_markdown(transcript: Transcript) -> str:
    header = {
        VERSION_KEY: MARKDOWN_VERSION,
        "id": transcript.id,
        "title": transcript.title,
        "model": transcript.model,
        "created": transcript.created_at,
        "settings": transcript.settings or None,
    }
    parts = ["---\n"]
    parts += [f"{key}: {json.dumps(value, ensure_ascii=False)}\n" for key, value in header.items() if value is not None]
    parts.append("---\n")
    if transcript.title:
        parts.append(f"\n# {' '.join(transcript.title.split())}\n")
    for message in transcript.messages:
        heading = str(message["role"]).capitalize()
        if message.get("interrupted"):
            heading += " (interrupted)"
        if is_summary(message):
            heading += " (summary by /compact)"
        meta = {"role": message["role"], **{k: v for k, v in message.items() if k not in ("role", "content")}}
        parts.append(f"\n### {heading}\n\n<!-- starchat-tui:message {_json_line(meta)} -->\n")
        parts.append(_escape(str(message["content"])))
        parts.append(f"\n{END_LINE}\n")
        fence = open_fence(str(message["content"]))
        if fence:
            # An answer cut off inside a code block would swallow the rest of the page when rendered;
            # close it outside the markers, where the reader ignores it.
            parts.append(f"{fence}\n")
    return "".join(parts)


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def open_fence(content: str) -> str | None:
    """The fence that would close a code block left open at the end of ``content``, if one is."""
    opened: str | None = None
    for line in content.splitlines():
        match = _FENCE.match(line)
        if not match:
            continue
        run, rest = match.groups()
        if opened is None:
            if not (run[0] == "`" and "`" in rest):
                opened = run
        elif run[0] == opened[0] and len(run) >= len(opened) and not rest.strip():
            opened = None
    return opened


def render(transcripts: list[Transcript], fmt: str) -> str:
    """The text of an export; several sessions go together only as JSONL, one per line."""
    if fmt == "jsonl":
        return to_jsonl(transcripts)
    if len(transcripts) != 1:
        raise UsageError(f"{fmt} holds one session; use --format jsonl to export several (one per line)")
    return to_json(transcripts[0]) if fmt == "json" else to_markdown(transcripts[0])


# -- reading --------------------------------------------------------------------------------------


def _checked(messages: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
        raise UsageError(f'{where}: expected {{"messages": [{{"role": ..., "content": ...}}, ...]}}')
    for index, message in enumerate(messages):
        if not isinstance(message.get("content"), str):
            raise UsageError(f"{where}: message {index} has no text content")
    try:
        Conversation.from_messages(messages)
    except (ValueError, TypeError) as error:
        raise UsageError(f"{where}: {error}") from None
    return [dict(m) for m in messages]


def _from_object(data: Any, where: str) -> Transcript:
    if not isinstance(data, Mapping) or "messages" not in data:
        raise UsageError(f'{where}: expected an object of the form {{"messages": [...]}}')
    return Transcript(messages=_checked(data["messages"], where))


def from_json(text: str, source: str) -> list[Transcript]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{source}: not valid JSON ({error}); is it JSONL? pass --format jsonl") from None
    if isinstance(data, list):
        return [_from_object(item, f"{source} item {n}") for n, item in enumerate(data)]
    return [_from_object(data, source)]


def from_jsonl(text: str, source: str) -> list[Transcript]:
    transcripts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(f"{source} line {number}: not valid JSON ({error.msg})") from None
        transcripts.append(_from_object(data, f"{source} line {number}"))
    return transcripts


def _front_matter(text: str, source: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 3)
    if end < 0:
        raise UsageError(f"{source}: the front matter that starts on line 1 never ends with a --- line")
    meta: dict[str, Any] = {}
    for line in text[4:end].splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        try:
            meta[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            meta[key.strip()] = value.strip()
    return meta, text[end + 5:]


def from_markdown(text: str, source: str) -> list[Transcript]:
    meta, body = _front_matter(text, source)
    version = meta.get(VERSION_KEY)
    if isinstance(version, int) and version > MARKDOWN_VERSION:
        raise UsageError(f"{source}: written by a newer starchat-tui (transcript version {version}); upgrade to import it")
    messages = []
    position = 0
    while True:
        start = _START.search(body, position)
        if start is None:
            break
        end_match = _END.search(body, start.end())
        if end_match is None:
            line = body.count("\n", 0, start.start()) + 1
            raise UsageError(f"{source}: the message opened near line {line} of the body never ends with {END_LINE}")
        try:
            header = json.loads(start.group(1))
        except json.JSONDecodeError:
            raise UsageError(f"{source}: a message marker holds broken JSON: {start.group(0).strip()}") from None
        if not isinstance(header, dict):
            raise UsageError(f"{source}: a message marker holds no role: {start.group(0).strip()}")
        content = _unescape(body[start.end():end_match.start()])
        messages.append({"role": header.pop("role", None), "content": content, **header})
        position = end_match.end()
    if not messages and VERSION_KEY not in meta:
        raise UsageError(
            f"{source}: not a starchat-tui Markdown transcript (no message markers); "
            "export one with `starchat-tui history export ID --format md`"
        )
    settings = meta.get("settings")
    return [Transcript(
        messages=_checked(messages, source),
        title=meta.get("title") if isinstance(meta.get("title"), str) else None,
        model=meta.get("model") if isinstance(meta.get("model"), str) else None,
        settings=settings if isinstance(settings, dict) else {},
        created_at=meta.get("created") if isinstance(meta.get("created"), str) else None,
        id=meta.get("id") if isinstance(meta.get("id"), str) else None,
    )]


def session_transcript(store: Any, session_id: str) -> Transcript:
    """A saved session, ready for :func:`render`: its system message, messages and metadata."""
    session = store.get_session(session_id)
    return Transcript(
        messages=store.conversation(session.id).messages, title=session.title or None, model=session.model,
        settings=session.settings, created_at=session.created_at.isoformat(), id=session.id,
    )


def save_transcripts(store: Any, transcripts: list[Transcript], *, model: str = "unknown") -> list[str]:
    """Save each transcript as a new session (all or none); return the new IDs in order."""
    return store.import_sessions([
        (t.messages, {"model": t.model or model, "title": t.title, "settings": t.settings,
                      "created_at": t.created_at})
        for t in transcripts
    ])


def parse(text: str, fmt: str, source: str) -> list[Transcript]:
    """Every conversation in ``text``, read as ``fmt``; a one-line UsageError on anything malformed."""
    reader = {"md": from_markdown, "json": from_json, "jsonl": from_jsonl}[fmt]
    transcripts = reader(text, source)
    if not transcripts:
        raise UsageError(f"{source}: holds no conversations")
    return transcripts
