"""Running a code block of the chat in the sandbox, and saving one to a file: the chat's side of both.

Nothing runs without the user's say-so: the front-end shows the code and the sandbox that would hold it,
and without a safe sandbox the user must confirm a second time. Each chat has a work folder of its own, so
files one run writes are there for the next.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from .interrupt import ctrl_c_calls

if TYPE_CHECKING:
    from ..chat.blocks import CodeBlock
    from ..sandbox.result import Result
    from .front import Front

# Fence tags people write for the two languages the sandbox always has.
RUN_LANGUAGES = {"py": "python", "python3": "python", "python": "python", "sh": "bash", "shell": "bash",
                 "bash": "bash", "console": "bash", "zsh": "bash"}


@dataclass(frozen=True)
class RunChoice:
    """What the user chose for a block about to run, with the code as they left it."""

    action: str  # run | always | copy | skip
    code: str


class CodeRunner:
    """Runs a chat's code blocks one at a time; :meth:`stop` ends the run under way, from any thread."""

    def __init__(self) -> None:
        self.always_run = False  # the user chose "always run" for this chat, under a safe sandbox
        self._cancel: threading.Event | None = None

    @property
    def running(self) -> bool:
        return self._cancel is not None

    def stop(self) -> None:
        if self._cancel is not None:
            self._cancel.set()

    @contextmanager
    def stoppable(self) -> Iterator[threading.Event]:
        """An event that :meth:`stop` (Esc in the app) and Ctrl+C in a terminal set: for a !command, which the
        user stops the way they stop a block's run."""
        self._cancel = cancel = threading.Event()
        try:
            with ctrl_c_calls(cancel.set):
                yield cancel
        finally:
            self._cancel = None

    def run(self, front: Front, block: CodeBlock, language: str = "") -> None:
        try:
            from .. import sandbox
        except ImportError:
            front.note("the sandbox is not part of this build, so code cannot run here; copy it with "
                       f"/copy {block.number} and run it yourself", "warning")
            return
        language = language or RUN_LANGUAGES.get(block.language.lower(), block.language.lower())
        if not language:
            raise UsageError(f"block {block.number} has no language tag: say which, for example /run {block.number} python")
        info = sandbox.probe_backend(front.settings.section("sandbox"))
        choice = RunChoice("run", block.code) if self.always_run and info.safe else front.choose_run(block, language, info)
        if choice.action == "skip":
            return
        if choice.action == "copy":
            front.note(f"copied block {block.number} {front.copy(choice.code)}")
            return
        if choice.action == "always":
            self.always_run = True
        if not info.safe and not front.confirm(
            f"Really run block {block.number} with NO sandbox, as you, with your files and network?",
            yes="Run unsandboxed", danger=True,
        ):
            return
        timeout = float(front.settings.section("sandbox").get("timeout", 30))
        self._cancel = cancel = threading.Event()

        def run_in(workdir: Path | None) -> Result:
            # The user confirmed this run (twice without a sandbox): only now is an unsafe run allowed.
            return sandbox.run(choice.code, language, workdir=workdir, timeout=timeout, allow_unsafe=not info.safe,
                               cancel=cancel)

        try:
            with ctrl_c_calls(cancel.set):
                front.status(f"running block {block.number} ({language}) in {info.name}")
                try:
                    result = run_in(work_folder(front.chat.session_id))
                except sandbox.WorkdirUnusable:
                    # This chat's folder is one the sandbox cannot use here: run in a fresh folder instead.
                    result = run_in(None)
        finally:
            self._cancel = None
            front.status("")
        front.show_run(block, language, result)


def work_folder(session_id: str | None) -> Path:
    """The folder a chat's runs share (made on first use)."""
    from ..config import cache_dir

    folder = cache_dir() / "runs" / (session_id or "unsaved")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_block(front: Front, block: CodeBlock, path_text: str = "") -> None:
    """Write a block to a file the user names; an existing file is replaced only when they confirm."""
    from ..files import write_file

    if not path_text:
        path_text = front.ask(f"Save block {block.number} to", block.suggested_name()) or ""
        if not path_text.strip():
            return
    path = Path(path_text.strip()).expanduser()
    if path.is_dir():
        path = path / block.suggested_name()
    replace = path.exists()
    if replace and not front.confirm(f"{path} exists. Replace it?", yes="Replace", danger=True):
        return
    if not path.parent.exists():
        try:
            path.parent.mkdir(parents=True)
        except OSError as error:
            raise UsageError(f"cannot make the folder {path.parent}: {error.strerror or error}; choose another path") from None
    write_file(path, block.code + "\n", force=replace)
    front.note(f"saved block {block.number} to {path}")
