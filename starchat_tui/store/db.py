"""Opening the sessions database: a private file, WAL journaling, and writes that survive a crash.

The file is created with mode 0600 before SQLite touches it, because SQLite gives its ``-wal`` and
``-shm`` companions the mode of the main file: transcripts are private, and so are their journals.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from ..errors import UsageError

# How long a writer waits for another starchat-tui process holding the write lock before giving up.
BUSY_TIMEOUT_MS = 5000


def create_private_file(path: Path) -> None:
    """Make sure ``path`` exists with mode 0600, creating its folder (0700) when needed."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        # An existing file may have been created by an older version or by hand with a looser mode.
        if stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` with the pragmas the store relies on.

    The connection is in autocommit mode; the store wraps each change in its own transaction. It may be
    used from several threads, one at a time: the store serialises access with a lock.
    """
    try:
        create_private_file(path)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    except OSError as error:
        raise UsageError(
            f"{path}: cannot open the sessions database ({error.strerror}); "
            "check the folder's permissions or set STARCHAT_TUI_DATA_DIR to a writable folder"
        ) from None
    try:
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"journal mode is {mode}, not wal")
        # FULL syncs the WAL on every commit: a finished turn is on disk, not only in the page cache, before
        # the call returns. Commits are rare (a message, or a streaming save about once a second).
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as error:
        connection.close()
        raise UsageError(
            f"{path}: not a usable sessions database ({error}); move the file aside and "
            "starchat-tui will start a new one"
        ) from None
    return connection
