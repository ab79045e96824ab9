"""Coding tasks in the HumanEval file format, and the chat message each one becomes.

One JSON object per line::

    {"task_id": "HumanEval/0", "prompt": "def f(x):\\n    \\"\\"\\"...\\"\\"\\"\\n", "entry_point": "f",
     "test": "def check(candidate):\\n    assert candidate(1) == 2\\n"}

``prompt`` is the start of a function for a base model to continue; a chat model is asked to complete it
(:data:`COMPLETION_INSTRUCTION`). An optional ``instruction`` field, as HumanEvalPack's "synthesize"
files have, is sent as the user message instead. ``test`` defines ``check(candidate)``, which the runner
calls on the function named ``entry_point``. Gzipped files (``HumanEval.jsonl.gz``) are read as they are.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .rows import json_rows

COMPLETION_INSTRUCTION = "Complete this Python function:"
REQUIRED = ("task_id", "prompt", "test", "entry_point")


@dataclass(frozen=True)
class EvalTask:
    """One task: what to ask, and the test its answer must pass."""

    task_id: str
    prompt: str
    test: str
    entry_point: str
    instruction: str | None = None

    def user_message(self) -> str:
        """What the model is asked, as one user turn."""
        if self.instruction:
            return self.instruction
        return completion_request(self.prompt)

    def to_json(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps(data, ensure_ascii=False)


def completion_request(prompt: str) -> str:
    """The chat form of a HumanEval prompt; the demo corpus asks for completions in exactly these words."""
    return f"{COMPLETION_INSTRUCTION}\n\n```python\n{prompt.rstrip()}\n```"


def load_tasks(path: str | Path) -> list[EvalTask]:
    """Read a HumanEval-format JSONL file; every problem is reported with its line number."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"{path}: no such tasks file (expected HumanEval-format JSON lines)")
    tasks: list[EvalTask] = []
    seen: set[str] = set()
    for where, row in json_rows(path, "task"):
        tasks.append(_parse_task(where, row, seen))
    if not tasks:
        raise UsageError(f"{path}: no tasks in it (expected one JSON object per line with {', '.join(REQUIRED)})")
    return tasks


def _parse_task(where: str, row: Any, seen: set[str]) -> EvalTask:
    if not isinstance(row, dict):
        raise UsageError(f"{where}: expected a JSON object, found {type(row).__name__}")
    missing = [key for key in REQUIRED if not isinstance(row.get(key), str)]
    if missing:
        raise UsageError(f"{where}: missing or non-text field(s) {', '.join(missing)}; "
                         f"HumanEval tasks need {', '.join(REQUIRED)}")
    if "def check(" not in row["test"]:
        raise UsageError(f"{where}: the test of {row['task_id']} does not define check(candidate)")
    if not row["entry_point"].isidentifier():
        raise UsageError(f"{where}: entry_point {row['entry_point']!r} is not a Python name")
    if row["task_id"] in seen:
        raise UsageError(f"{where}: task_id {row['task_id']!r} appears twice; task ids must be unique")
    seen.add(row["task_id"])
    instruction = row.get("instruction")
    return EvalTask(row["task_id"], row["prompt"], row["test"], row["entry_point"],
                    instruction if isinstance(instruction, str) and instruction.strip() else None)


def write_tasks(tasks: list[EvalTask], path: str | Path) -> Path:
    path = Path(path)
    path.write_text("".join(task.to_json() + "\n" for task in tasks), encoding="utf-8")
    return path
