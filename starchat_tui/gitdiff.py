"""The changes ``starchat-tui review`` reads from git: staged, since a base, or one commit.

git runs as a subprocess with a fixed context size, so the model sees enough of the code around each change
to judge it. A user's git settings that change what the diff looks like (colour, external diff tools,
textconv filters) are switched off: the model needs the plain unified diff.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import UsageError

CONTEXT_LINES = 10  # lines of unchanged code around each change: enough to see the function it sits in
PLAIN = ["--no-color", "--no-ext-diff", "--no-textconv", f"-U{CONTEXT_LINES}"]


@dataclass(frozen=True)
class Changes:
    """A diff to review: what it is (for the prompt and for messages) and its text."""

    label: str  # "staged changes", "changes since main", "commit 1a2b3c4"
    text: str
    message: str = ""  # the commit message, for --commit

    def files(self) -> list[tuple[str, str]]:
        """(path, diff) for each file the diff touches, in order."""
        return split_by_file(self.text)


def _git(args: list[str], folder: str | None = None) -> subprocess.CompletedProcess[str]:
    # LC_ALL=C: git's own messages are matched below; GIT_PAGER: a pager would wait for a terminal.
    env = {**os.environ, "LC_ALL": "C", "GIT_PAGER": "cat"}
    try:
        return subprocess.run(["git", *args], cwd=folder, env=env, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", check=False)
    except FileNotFoundError:
        raise UsageError("git is not installed: install it, or name the files to review (starchat-tui review FILE)") from None


def _require_repository(folder: str | None) -> None:
    if _git(["rev-parse", "--git-dir"], folder).returncode != 0:
        raise UsageError("not inside a git repository: run this in one, or name the files to review "
                         "(starchat-tui review FILE)")


def _require_commit(ref: str, flag: str, folder: str | None) -> str:
    """The full hash of ``ref``; a ref that is not a commit is a usage error naming it."""
    if ref.startswith("-"):  # git would read it as an option
        raise UsageError(f"{flag} {ref}: a commit or branch name cannot start with '-'")
    found = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], folder)
    if found.returncode != 0:
        raise UsageError(f"{flag} {ref}: no such commit or branch in this repository (git log --oneline lists them)")
    return found.stdout.strip()


def _diff(args: list[str], folder: str | None) -> str:
    result = _git(args, folder)
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()
        raise UsageError(f"git {args[0]} failed: {detail[-1] if detail else f'exit code {result.returncode}'}")
    return result.stdout


def staged(paths: Sequence[str] = (), folder: str | None = None) -> Changes:
    """What ``git commit`` would commit now."""
    _require_repository(folder)
    return Changes("staged changes", _diff(["diff", "--staged", *PLAIN, "--", *paths], folder))


def since(base: str, paths: Sequence[str] = (), folder: str | None = None) -> Changes:
    """The commits on this branch since it left ``base``: ``git diff BASE...HEAD``."""
    _require_repository(folder)
    _require_commit(base, "--base", folder)
    return Changes(f"changes since {base}", _diff(["diff", *PLAIN, f"{base}...HEAD", "--", *paths], folder))


def commit(ref: str, paths: Sequence[str] = (), folder: str | None = None) -> Changes:
    """One commit, against its first parent (a root commit against nothing), with its message."""
    _require_repository(folder)
    full = _require_commit(ref, "--commit", folder)
    text = _diff(["show", "--format=", "--diff-merges=first-parent", *PLAIN, full, "--", *paths], folder)
    message = _diff(["log", "-1", "--format=%B", full], folder).strip()
    return Changes(f"commit {full[:12]}", text, message)


def split_by_file(text: str) -> list[tuple[str, str]]:
    """Cut a unified diff at each ``diff --git`` line; the path is the new name (the old one when deleted)."""
    sections: list[tuple[str, str]] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("diff --git ") and current:
            sections.append((_path_of(current), "".join(current)))
            current = []
        current.append(line)
    if current:
        sections.append((_path_of(current), "".join(current)))
    return sections


def _path_of(section: list[str]) -> str:
    old = ""
    for line in section[1:8]:
        if line.startswith("+++ ") and line.strip() != "+++ /dev/null":
            return line[4:].strip().removeprefix("b/")
        if line.startswith("--- ") and line.strip() != "--- /dev/null":
            old = line[4:].strip().removeprefix("a/")
    if old:
        return old
    # No ---/+++ lines (a binary file, a mode change): the header names it as a/PATH b/PATH.
    header = section[0].strip().removeprefix("diff --git ")
    return header.rpartition(" b/")[2] or header
