"""Finding the checkpoint to resume from.

The Trainer writes ``trainer_state.json`` last, after the weights, optimizer and RNG states, so a
checkpoint folder whose state file is missing or cut short was interrupted mid-save (a kill, a
preemption) and is passed over for the one before it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import UsageError

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def is_complete(folder: Path) -> bool:
    state = folder / "trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` for each ``checkpoint-N`` folder, oldest first, complete or not."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_complete(output_dir: str | Path) -> Path | None:
    for _, folder in reversed(checkpoints(output_dir)):
        if is_complete(folder):
            return folder
    return None


def resolve_resume(resume: bool | str | None, output_dir: str | Path) -> Path | None:
    """The checkpoint to resume from: see :attr:`TrainConfig.resume` for what ``resume`` means."""
    if resume is False:
        return None
    if isinstance(resume, str):
        folder = Path(resume).expanduser()
        if not is_complete(folder):
            raise UsageError(f"--resume {resume}: not a complete checkpoint (no readable trainer_state.json)")
        return folder
    latest = latest_complete(output_dir)
    if resume is True and latest is None:
        raise UsageError(f"--resume: no complete checkpoint in {output_dir} to resume from")
    return latest
