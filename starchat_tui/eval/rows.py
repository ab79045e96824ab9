"""The one reader of the evaluation's JSON files: tasks, prompts, saved answers and samples to score.

``.jsonl`` holds one JSON value per line (blank lines skipped), ``.json`` one JSON list; either may be
gzipped (``HumanEval.jsonl.gz``). Every row comes with where it was read (``file:line`` or ``file[index]``),
so the caller's complaint about a row can name it; unreadable files and invalid JSON are UsageErrors here.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import UsageError


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def is_json_list(path: Path) -> bool:
    return path.name.removesuffix(".gz").endswith(".json")


def is_json_file(path: Path) -> bool:
    """Whether :func:`json_rows` reads ``path`` (by its name: where a text file of lines is also accepted)."""
    return path.name.removesuffix(".gz").endswith((".jsonl", ".json"))


def json_rows(path: Path, what: str) -> Iterator[tuple[str, Any]]:
    """``(where, row)`` for every row of ``path``; ``what`` names a row in errors ("task", "sample")."""
    try:
        with _open_text(path) as handle:
            if is_json_list(path):
                yield from _list_rows(path, handle.read(), what)
                return
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise UsageError(f"{path}:{number}: not valid JSON ({error.msg}); each line must be one {what} "
                                     "object") from None
                yield f"{path}:{number}", row
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise UsageError(f"{path}: cannot read it ({error})") from None


def _list_rows(path: Path, text: str, what: str) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON ({error.msg}); a .json file must be one list of {what} objects") from None
    if not isinstance(data, list):
        raise UsageError(f"{path}: expected a JSON list of {what} objects, found {type(data).__name__}")
    for index, row in enumerate(data):
        yield f"{path}[{index}]", row
