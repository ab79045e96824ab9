"""Training dialogues: loaded from files, a folder, a Hub dataset or a starchat-tui history export, then
validated row by row before anything trains.

Every row becomes a list of ``{"role", "content"}`` messages. Rows may use other column names
(``messages_field``, ``role_field``, ``content_field``), other role names (``role_map``, e.g.
``human=user,gpt=assistant``) or ``prompt``/``completion`` columns for single-turn data.

History exports (``starchat-tui history export``) load as they are: JSON and JSONL exports are already
this format, and Markdown transcripts are read with the history store's own reader.

A bad row is reported with where it came from: ``file.jsonl:LINE`` for JSON lines, ``file.json[INDEX]``
or ``file.parquet[INDEX]`` otherwise, ``name[split][INDEX]`` for Hub datasets.

Two kinds of rows are fine but adjusted, and counted: user turns after the last reply are dropped (they
teach nothing once masked), and a reply marked ``"interrupted": true`` (stopped by the user in
starchat-tui) ends the dialogue before it, so a cut-off answer is never taught as complete. A dialogue
left with no reply at all is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

FILE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".md")
TRANSCRIPT_MARK = "---\nstarchat-tui-transcript:"
ROLES = ("system", "user", "assistant")
# Keys of a JSON object that may hold a list of conversations (history exports, dataset dumps).
LIST_KEYS = ("conversations", "sessions", "data", "rows", "examples")


@dataclass
class Problem:
    """One invalid row: where it is and what is wrong with it."""

    origin: str
    message: str

    def __str__(self) -> str:
        return f"{self.origin}: {self.message}"


@dataclass
class Columns:
    """How rows name their parts; the defaults are the datasets "messages" format."""

    messages: str = "messages"
    role: str = "role"
    content: str = "content"
    prompt: str = "prompt"
    completion: str = "completion"
    role_map: dict[str, str] = field(default_factory=dict)
    system_prompt: str | None = None


@dataclass
class Dialogues:
    """The valid dialogues of one source, with what was wrong or changed along the way."""

    messages: list[list[dict[str, str]]] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    rows: int = 0
    trimmed_user_turns: int = 0
    cut_at_interrupted: int = 0
    without_reply: int = 0

    def summary(self) -> str:
        parts = [f"{len(self.messages):,} dialogues from {self.rows:,} rows"]
        if self.problems:
            parts.append(f"{len(self.problems):,} invalid rows skipped")
        if self.without_reply:
            parts.append(f"{self.without_reply:,} without an assistant reply dropped")
        if self.trimmed_user_turns:
            parts.append(f"{self.trimmed_user_turns:,} ending on a user turn trimmed")
        if self.cut_at_interrupted:
            parts.append(f"{self.cut_at_interrupted:,} cut before an interrupted reply")
        return ", ".join(parts)


def parse_role_map(value: Any) -> dict[str, str]:
    """``{"human": "user"}`` or ``"human=user,gpt=assistant"`` to a dict; bad input is a UsageError."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        pairs = {str(k): str(v) for k, v in value.items()}
    else:
        pairs = {}
        for item in str(value).split(","):
            name, sep, role = item.partition("=")
            if not sep or not name.strip() or not role.strip():
                raise UsageError(f"role_map: {item.strip()!r} is not NAME=ROLE; write it like human=user,gpt=assistant")
            pairs[name.strip()] = role.strip()
    for name, role in pairs.items():
        if role not in ROLES:
            raise UsageError(f"role_map: {name} maps to {role!r}; map roles to one of {', '.join(ROLES)}")
    return pairs


# ---------------------------------------------------------------------------------------------------
# Reading rows


class _Unreadable:
    """A row that could not even be parsed; validation turns it into a Problem."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{number}", json.loads(line)
            except json.JSONDecodeError as error:
                yield f"{path}:{number}", _Unreadable(f"invalid JSON ({error.msg} at column {error.colno})")


def _json_rows(path: Path, row_keys: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # datasets reads JSON-lines files named .json too; so do we.
        yield from _jsonl_rows(path)
        return
    if isinstance(data, dict) and not any(key in data for key in row_keys):
        key = next((k for k in LIST_KEYS if isinstance(data.get(k), list)), None)
        if key is None:
            raise UsageError(
                f"{path}: a JSON object with no rows in it: expected a list of rows, one row with "
                f"'messages', or a list under one of {', '.join(LIST_KEYS)}"
            )
        data = data[key]
    if isinstance(data, dict):
        yield str(path), data
        return
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a JSON list of rows, found {type(data).__name__}")
    for index, row in enumerate(data):
        yield f"{path}[{index}]", row


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise UsageError(f"{path}: not a readable Parquet file ({error})") from None
    for index, row in enumerate(table.to_pylist()):
        yield f"{path}[{index}]", row


def _markdown_rows(path: Path) -> Iterator[tuple[str, Any]]:
    """A Markdown transcript from ``starchat-tui history export --format md``: one conversation."""
    from ..store.transcripts import from_markdown

    try:
        transcripts = from_markdown(path.read_text(encoding="utf-8", errors="replace"), str(path))
    except UsageError as error:
        yield str(path), _Unreadable(str(error).removeprefix(f"{path}: "))
        return
    for transcript in transcripts:
        yield str(path), {"messages": transcript.messages}


def is_transcript(path: Path) -> bool:
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        return handle.read(len(TRANSCRIPT_MARK)) == TRANSCRIPT_MARK


def _file_rows(path: Path, row_keys: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(path)
    if suffix == ".json":
        return _json_rows(path, row_keys)
    if suffix == ".parquet":
        return _parquet_rows(path)
    if suffix == ".md":
        return _markdown_rows(path)
    raise UsageError(
        f"{path}: unsupported file type {suffix or '(none)'}; use .jsonl, .json, .parquet "
        "or a starchat-tui Markdown transcript (.md)"
    )


def _hub_rows(name: str, config: str | None, split: str) -> Iterator[tuple[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise UsageError("loading a Hub dataset needs the datasets package: pip install 'starchat-tui[train]'") from None
    try:
        dataset = datasets.load_dataset(name, config, split=split)
    except ValueError as error:
        raise UsageError(f"dataset {name}: {error}") from None
    except Exception as error:  # offline, not found, gated: datasets has no single error type for these
        raise UsageError(
            f"could not load dataset {name!r} ({type(error).__name__}: {error}); "
            "check the Hub id, or give a local .jsonl/.json/.parquet file or folder"
        ) from None
    for index, row in enumerate(dataset):
        yield f"{name}[{split}][{index}]", row


def looks_local(source: str) -> bool:
    return (
        Path(source).expanduser().exists()
        or source.startswith((".", "/", "~"))
        or source.lower().endswith(FILE_SUFFIXES)
        or source.count("/") > 1
    )


def iter_rows(
    source: str, *, config: str | None = None, split: str = "train", row_keys: tuple[str, ...] = ("messages", "prompt")
) -> Iterator[tuple[str, Any]]:
    """Every row of ``source`` (a file, a folder of files, or a Hub dataset id) with where it came from.

    ``row_keys`` tell a JSON file holding one row (a single exported conversation) from one holding a
    list of rows under a key such as ``conversations``.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix.lower() in FILE_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
            # A folder's README is not data; only Markdown that starchat-tui exported is.
            and (p.suffix.lower() != ".md" or is_transcript(p))
        )
        if not files:
            raise UsageError(f"{source}: no .jsonl, .json, .parquet or transcript .md files in this folder")
        for file in files:
            yield from _file_rows(file, row_keys)
    elif path.is_file():
        yield from _file_rows(path, row_keys)
    elif looks_local(source):
        raise UsageError(f"{source}: no such file or folder")
    else:
        yield from _hub_rows(source, config, split)


# ---------------------------------------------------------------------------------------------------
# Validation


def _messages_of(row: Any, columns: Columns) -> list:
    """The raw message list of a row; raises ValueError with what is wrong."""
    if isinstance(row, _Unreadable):
        raise ValueError(row.reason)
    if not isinstance(row, Mapping):
        raise ValueError(f"expected a JSON object, found {type(row).__name__}")
    if columns.messages in row:
        messages = row[columns.messages]
        if not isinstance(messages, list):
            raise ValueError(f"'{columns.messages}' must be a list of messages, found {type(messages).__name__}")
        return messages
    if columns.prompt in row and columns.completion in row:
        return [
            {columns.role: "user", columns.content: row[columns.prompt]},
            {columns.role: "assistant", columns.content: row[columns.completion]},
        ]
    found = ", ".join(repr(k) for k in list(row)[:8]) or "none"
    raise ValueError(
        f"no '{columns.messages}' column (columns: {found}); set messages_field, "
        f"or give '{columns.prompt}' and '{columns.completion}' columns"
    )


def normalize(row: Any, columns: Columns) -> tuple[list[dict[str, str]], bool]:
    """Validate one row; returns its messages and whether it was cut at an interrupted reply.

    Raises ``ValueError`` naming the first problem: roles, turn order, empty contents, unknown roles.
    """
    raw = _messages_of(row, columns)
    if not raw:
        raise ValueError("no messages")
    messages: list[dict[str, str]] = []
    interrupted = False
    for number, message in enumerate(raw, 1):
        where = f"message {number}"
        if not isinstance(message, Mapping):
            raise ValueError(f"{where}: expected an object with '{columns.role}' and '{columns.content}'")
        if columns.role not in message:
            raise ValueError(f"{where}: no '{columns.role}'")
        role = message[columns.role]
        role = columns.role_map.get(role, role) if isinstance(role, str) else role
        if role not in ROLES:
            raise ValueError(
                f"{where}: unknown role {message[columns.role]!r}; use system, user or assistant, "
                "or map it with role_map (e.g. human=user,gpt=assistant)"
            )
        content = message.get(columns.content)
        if not isinstance(content, str):
            kind = "no" if content is None else f"a {type(content).__name__} as"
            raise ValueError(f"{where}: {kind} '{columns.content}'; it must be a string")
        if role == "system":
            if messages:
                raise ValueError(f"{where}: a system message can only come first")
        elif not content.strip():
            raise ValueError(f"{where}: empty {role} message")
        else:
            previous = messages[-1]["role"] if messages else "system"
            expected = "user" if previous in ("system", "assistant") else "assistant"
            if role != expected:
                problem = "the first turn must be a user turn" if previous == "system" else f"two {role} turns in a row"
                raise ValueError(f"{where}: {problem}")
        if role == "assistant" and message.get("interrupted") is True:
            interrupted = True
            break
        messages.append({"role": role, "content": content})
    if columns.system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": columns.system_prompt})
    return messages, interrupted


def load_dialogues(
    source: str, columns: Columns, *, config: str | None = None, split: str = "train", limit: int | None = None
) -> Dialogues:
    """Load and validate every row of ``source``; invalid rows are collected, not raised."""
    result = Dialogues()
    row_keys = (columns.messages, columns.prompt)
    for origin, row in iter_rows(source, config=config, split=split, row_keys=row_keys):
        result.rows += 1
        try:
            messages, interrupted = normalize(row, columns)
        except ValueError as error:
            result.problems.append(Problem(origin, str(error)))
            continue
        if limit is not None and len(result.messages) >= limit:
            continue
        if not any(m["role"] == "assistant" for m in messages):
            result.without_reply += 1
            continue
        result.cut_at_interrupted += interrupted
        if messages[-1]["role"] == "user":
            messages.pop()  # turns alternate, so only one user turn can follow the last reply
            result.trimmed_user_turns += 1
        result.messages.append(messages)
        result.origins.append(origin)
    return result


def raise_for_problems(dialogues: Dialogues, *, skip_invalid: bool, show: int = 10) -> None:
    """Exit 2 listing the first bad rows, unless ``skip_invalid``."""
    problems = dialogues.problems
    if not problems or skip_invalid:
        return
    lines = [f"{len(problems):,} of {dialogues.rows:,} rows are invalid:"]
    lines += [f"  {problem}" for problem in problems[:show]]
    if len(problems) > show:
        lines.append(f"  ... and {len(problems) - show:,} more")
    lines.append("fix them, or pass --skip-invalid to train without them")
    raise UsageError("\n".join(lines))
