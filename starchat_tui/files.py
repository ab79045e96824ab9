"""The user's files: reading what they name (or stdin for ``-``) and writing whole files, with one-line errors."""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from .errors import UsageError


def read_bytes(path: str, *, folder_hint: str) -> bytes:
    """The bytes of ``path`` (stdin for ``-``); ``folder_hint`` tells a user who named a folder what to name."""
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder; {folder_hint}") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read it ({error.strerror})") from None


def read_text(path: str, *, folder_hint: str, encoding_hint: str) -> str:
    """``read_bytes`` decoded as UTF-8; ``encoding_hint`` says what the text should be."""
    data = read_bytes(path, folder_hint=folder_hint)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{'stdin' if path == '-' else path}: not UTF-8 text; {encoding_hint}") from None


def check_writable(path: Path, *, force: bool) -> Path:
    """Refuse, before any work is done, a file that ``write_file`` would refuse; returns its folder."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it or choose another file")
    if path.is_dir():
        raise UsageError(f"{path} is a folder; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    return folder


def write_file(path: Path, text: str, *, force: bool) -> None:
    """Write ``text`` to ``path`` whole or not at all; never replace a file unless told to."""
    folder = check_writable(path, force=force)
    try:
        # mkstemp makes the file 0600: give it the mode of the file it replaces (an executable script stays
        # executable), or what the umask gives a new file.
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask()
        fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.chmod(temp, mode)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as error:
        raise UsageError(f"{path}: cannot write it ({error.strerror})") from None


def _umask() -> int:
    """The process's umask, read without setting it: os.umask would change it for every thread meanwhile."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022
