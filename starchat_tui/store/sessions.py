"""Saved sessions: every message written and committed the moment it exists.

One SQLite file holds all sessions. Each method is one short transaction, so a crash (even ``kill -9``)
between two calls loses nothing that a call had returned from. An answer that is still streaming is
saved with ``final = 0``; if the app dies before its last save, it reads back marked interrupted.

The store may be shared by the UI thread and a worker thread: a lock serialises them.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..chat.conversation import Conversation
from ..errors import UsageError
from .db import connect
from .migrations import migrate

ID_BYTES = 4  # 8 hex characters: short enough to type, and a clash is checked for anyway
TITLE_LIMIT = 80
PROMPT_HISTORY_LIMIT = 10_000
SNIPPET_MARKS = ("«", "»")
MESSAGE_ROLES = ("user", "assistant")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def iso_or_none(value: Any) -> str | None:
    """``value`` as an ISO 8601 UTC timestamp, or None when it is not a readable one."""
    try:
        stamp = datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc).isoformat(timespec="microseconds")


def title_from(text: str) -> str:
    """The first non-blank line of ``text``, trimmed and shortened to :data:`TITLE_LIMIT` characters."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= TITLE_LIMIT else line[: TITLE_LIMIT - 1].rstrip() + "…"
    return ""


@dataclass
class Session:
    """A saved conversation's metadata; its messages come from :meth:`SessionStore.messages`."""

    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    model: str
    system: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    message_count: int = 0
    forked_from: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Session:
        return cls(
            id=row["id"],
            title=row["title"],
            created_at=datetime.fromisoformat(row["created_at"]),
            updated_at=datetime.fromisoformat(row["updated_at"]),
            model=row["model"],
            system=row["system"],
            settings=json.loads(row["settings"]),
            message_count=row["message_count"],
            forked_from=row["forked_from"],
        )


_SESSION_COLUMNS = (
    "s.id, s.title, s.created_at, s.updated_at, s.model, s.system, s.settings, s.forked_from, "
    "(SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id) AS message_count"
)


class SessionStore:
    """All saved sessions and the prompt history, in one SQLite file (0600, WAL, migrated on open)."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            from ..config import data_dir

            path = data_dir() / "sessions.db"
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = connect(self.path)
        self._db.row_factory = sqlite3.Row
        try:
            migrate(self._db, self.path)
        except BaseException:
            self._db.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _require(self, db: sqlite3.Connection, session_id: str) -> None:
        if db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
            raise UsageError(f"no session {session_id!r}: see `starchat-tui history list` for the IDs")

    def _touch(self, db: sqlite3.Connection, session_id: str) -> None:
        db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", (now(), session_id))

    def _new_id(self, db: sqlite3.Connection) -> str:
        while True:
            candidate = secrets.token_hex(ID_BYTES)
            if db.execute("SELECT 1 FROM sessions WHERE id = ?", (candidate,)).fetchone() is None:
                return candidate

    # -- sessions ---------------------------------------------------------------------------------

    def create_session(self, model: str, system: str | None = None, settings: dict | None = None) -> Session:
        """Start a new, empty session."""
        with self._transaction() as db:
            session_id = self._insert_session(db, model=model, system=system, settings=settings)
        return self.get_session(session_id)

    def _insert_session(
        self, db: sqlite3.Connection, *, model: str, system: str | None, settings: Mapping | None,
        title: str = "", renamed: bool = False, forked_from: str | None = None,
        created_at: str | None = None,
    ) -> str:
        session_id = self._new_id(db)
        stamp = created_at or now()
        db.execute(
            "INSERT INTO sessions (id, title, renamed, created_at, updated_at, model, system, settings, forked_from)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, title, int(renamed), stamp, now(), model, system or None,
             json.dumps(dict(settings or {}), ensure_ascii=False), forked_from),
        )
        return session_id

    def get_session(self, id_or_prefix: str) -> Session:
        """The session whose ID is or starts with ``id_or_prefix``; a one-line UsageError otherwise."""
        wanted = (id_or_prefix or "").strip().lower()
        if not wanted:
            raise UsageError("no session ID given: see `starchat-tui history list` for the IDs")
        rows = self._query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions s WHERE s.id = ? OR substr(s.id, 1, ?) = ?"
            " ORDER BY s.id = ? DESC, s.updated_at DESC LIMIT 6",
            (wanted, len(wanted), wanted, wanted),
        )
        if not rows:
            raise UsageError(f"no session {id_or_prefix!r}: see `starchat-tui history list` for the IDs")
        if len(rows) > 1 and rows[0]["id"] != wanted:
            shown = ", ".join(row["id"] for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise UsageError(f"{id_or_prefix!r} matches several sessions ({shown}): type more of the ID")
        return Session.from_row(rows[0])

    def list_sessions(self, limit: int | None = None) -> list[Session]:
        """Sessions, the most recently updated first."""
        rows = self._query(
            f"SELECT {_SESSION_COLUMNS} FROM sessions s ORDER BY s.updated_at DESC, s.rowid DESC LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [Session.from_row(row) for row in rows]

    def last_session(self) -> Session | None:
        sessions = self.list_sessions(limit=1)
        return sessions[0] if sessions else None

    def rename(self, session_id: str, title: str) -> None:
        """Give the session a title of the user's own; an empty title goes back to the first user line."""
        title = " ".join(title.split())
        with self._transaction() as db:
            self._require(db, session_id)
            if title:
                db.execute("UPDATE sessions SET title = ?, renamed = 1 WHERE id = ?", (title, session_id))
            else:
                db.execute("UPDATE sessions SET title = ?, renamed = 0 WHERE id = ?",
                           (self._first_user_title(db, session_id), session_id))
            self._touch(db, session_id)

    def delete(self, session_id: str) -> None:
        with self._transaction() as db:
            self._require(db, session_id)
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def set_system(self, session_id: str, text: str | None) -> None:
        with self._transaction() as db:
            self._require(db, session_id)
            db.execute("UPDATE sessions SET system = ? WHERE id = ?", (text or None, session_id))
            self._touch(db, session_id)

    def set_settings(self, session_id: str, settings: Mapping[str, Any]) -> None:
        """Replace the session's generation settings."""
        with self._transaction() as db:
            self._require(db, session_id)
            db.execute("UPDATE sessions SET settings = ? WHERE id = ?",
                       (json.dumps(dict(settings), ensure_ascii=False), session_id))
            self._touch(db, session_id)

    def set_model(self, session_id: str, model: str) -> None:
        with self._transaction() as db:
            self._require(db, session_id)
            db.execute("UPDATE sessions SET model = ? WHERE id = ?", (model, session_id))
            self._touch(db, session_id)

    # -- messages ---------------------------------------------------------------------------------

    def add_message(self, session_id: str, role: str, content: str, *, final: bool = True, **extra: Any) -> int:
        """Append a message and commit it; return its id for :meth:`update_message`.

        Start a streamed answer with ``final=False`` (usually with empty content), so that a crash before
        its last save reads back as an interrupted answer rather than a finished one.
        """
        with self._transaction() as db:
            self._require(db, session_id)
            return self._insert_message(db, session_id, role, content, extra, final=final)

    def _insert_message(
        self, db: sqlite3.Connection, session_id: str, role: str, content: str, extra: Mapping[str, Any],
        *, final: bool = True,
    ) -> int:
        if role not in MESSAGE_ROLES:
            hint = "; use set_system() for the system message" if role == "system" else ""
            raise ValueError(f"unknown message role {role!r}: use user or assistant{hint}")
        if not isinstance(content, str):
            raise TypeError(f"message content must be str, not {type(content).__name__}")
        position = db.execute(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE session_id = ?", (session_id,)
        ).fetchone()[0]
        cursor = db.execute(
            "INSERT INTO messages (session_id, position, role, content, extra, final, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, position, role, content, json.dumps(dict(extra), ensure_ascii=False), int(final), now()),
        )
        if role == "user":
            # The first user message that has a non-blank line names the session.
            db.execute(
                "UPDATE sessions SET title = ? WHERE id = ? AND renamed = 0 AND title = ''",
                (title_from(content), session_id),
            )
        self._touch(db, session_id)
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def update_message(
        self, message_id: int, content: str, *, interrupted: bool | None = None, final: bool = False
    ) -> None:
        """Save the text so far of a message (a streaming answer), and commit.

        ``final=True`` marks the message complete; ``interrupted`` sets or clears its interrupted flag
        (None leaves it as it is). Call it about once a second while streaming, and once at the end.
        """
        with self._transaction() as db:
            row = db.execute("SELECT session_id, extra FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                raise UsageError(f"no message {message_id}: it was deleted (the session was cleared or removed)")
            extra = json.loads(row["extra"])
            if interrupted is True:
                extra["interrupted"] = True
            elif interrupted is False:
                extra.pop("interrupted", None)
            db.execute(
                "UPDATE messages SET content = ?, extra = ?, final = ? WHERE id = ?",
                (content, json.dumps(extra, ensure_ascii=False), int(final), message_id),
            )
            self._touch(db, row["session_id"])

    def messages(self, session_id: str) -> list[dict[str, Any]]:
        """The session's user and assistant messages, oldest first, without the system message.

        An answer whose stream never got its final save (the app died mid-answer) reads as interrupted.
        """
        rows = self._query(
            "SELECT role, content, extra, final FROM messages WHERE session_id = ? ORDER BY position",
            (session_id,),
        )
        messages = []
        for row in rows:
            message = {"role": row["role"], "content": row["content"], **json.loads(row["extra"])}
            if not row["final"]:
                message["interrupted"] = True
            messages.append(message)
        return messages

    def conversation(self, session_id: str) -> Conversation:
        """The session as a :class:`Conversation`: its system message, then its messages."""
        session = self.get_session(session_id)
        conversation = Conversation(system=session.system)
        for message in self.messages(session.id):
            extra = {k: v for k, v in message.items() if k not in ("role", "content")}
            conversation.add(message["role"], message["content"], **extra)
        return conversation

    def truncate(self, session_id: str, keep: int) -> None:
        """Delete every message after the first ``keep`` (to regenerate an answer or edit a message)."""
        with self._transaction() as db:
            self._require(db, session_id)
            count = db.execute("SELECT COUNT(*) FROM messages WHERE session_id = ?", (session_id,)).fetchone()[0]
            if not 0 <= keep <= count:
                raise UsageError(f"cannot keep {keep} messages: the session has {count}")
            db.execute("DELETE FROM messages WHERE session_id = ? AND position >= ?", (session_id, keep))
            db.execute(
                "UPDATE sessions SET title = ? WHERE id = ? AND renamed = 0",
                (self._first_user_title(db, session_id), session_id),
            )
            self._touch(db, session_id)

    def _first_user_title(self, db: sqlite3.Connection, session_id: str) -> str:
        rows = db.execute(
            "SELECT content FROM messages WHERE session_id = ? AND role = 'user' ORDER BY position", (session_id,)
        )
        return next((title for title in (title_from(row["content"]) for row in rows) if title), "")

    def fork(self, session_id: str, upto: int) -> Session:
        """A new session with the same model, system message and settings, and the first ``upto`` messages."""
        source = self.get_session(session_id)
        with self._transaction() as db:
            self._require(db, source.id)
            count = db.execute("SELECT COUNT(*) FROM messages WHERE session_id = ?", (source.id,)).fetchone()[0]
            if not 0 <= upto <= count:
                raise UsageError(f"cannot fork at message {upto}: the session has {count}")
            row = db.execute("SELECT title, renamed FROM sessions WHERE id = ?", (source.id,)).fetchone()
            new_id = self._insert_session(
                db, model=source.model, system=source.system, settings=source.settings,
                title=row["title"] if row["renamed"] else "", renamed=bool(row["renamed"]), forked_from=source.id,
            )
            db.execute(
                "INSERT INTO messages (session_id, position, role, content, extra, final, created_at)"
                " SELECT ?, position, role, content, extra, final, created_at FROM messages"
                " WHERE session_id = ? AND position < ? ORDER BY position",
                (new_id, source.id, upto),
            )
            if not row["renamed"]:
                db.execute("UPDATE sessions SET title = ? WHERE id = ?", (self._first_user_title(db, new_id), new_id))
        return self.get_session(new_id)

    def import_sessions(self, items: list[tuple[list[Mapping[str, Any]], Mapping[str, Any]]]) -> list[str]:
        """Save several conversations in one transaction: all of them, or (on any error) none."""
        ids = []
        with self._transaction() as db:
            for messages, meta in items:
                messages = list(messages)
                system = None
                if messages and messages[0].get("role") == "system":
                    system = messages[0].get("content") or None
                    messages = messages[1:]
                title = " ".join(str(meta.get("title") or "").split())
                first_user = next((m["content"] for m in messages if m.get("role") == "user"), "")
                # A title that is just the first user line stays automatic, so edits can update it.
                renamed = bool(title) and title != title_from(first_user)
                session_id = self._insert_session(
                    db, model=meta.get("model") or "unknown", system=system, settings=meta.get("settings"),
                    title=title if renamed else "", renamed=renamed, created_at=iso_or_none(meta.get("created_at")),
                )
                for message in messages:
                    extra = {k: v for k, v in message.items() if k not in ("role", "content")}
                    self._insert_message(db, session_id, message["role"], message["content"], extra)
                ids.append(session_id)
        return ids

    # -- search -----------------------------------------------------------------------------------

    def search(self, text: str, limit: int = 50, *, marks: tuple[str, str] = SNIPPET_MARKS) -> list[tuple[Session, str]]:
        """Sessions whose messages contain every word of ``text`` (each word also as a prefix), best first.

        Returns one ``(session, snippet)`` per session; the snippet is one line with the matches
        between ``marks``. The text is taken literally: FTS5 operators in it are not interpreted.
        """
        query = fts_query(text)
        if not query:
            return []
        rows = self._query(
            """
            SELECT m.session_id AS session_id,
                   snippet(messages_fts, 0, ?, ?, '…', 12) AS snippet,
                   bm25(messages_fts) AS score
            FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid
            WHERE messages_fts MATCH ?
            ORDER BY score
            """,
            (marks[0], marks[1], query),
        )
        best: dict[str, str] = {}
        for row in rows:
            best.setdefault(row["session_id"], " ".join(row["snippet"].split()))
            if len(best) >= limit:
                break
        if not best:
            return []
        placeholders = ",".join("?" * len(best))
        sessions = {
            row["id"]: Session.from_row(row)
            for row in self._query(f"SELECT {_SESSION_COLUMNS} FROM sessions s WHERE s.id IN ({placeholders})",
                                   list(best))
        }
        return [(sessions[sid], snippet) for sid, snippet in best.items() if sid in sessions]

    # -- prompt history ---------------------------------------------------------------------------

    def add_prompt(self, text: str) -> None:
        """Remember something the user typed, unless it is blank or repeats the last entry."""
        if not text.strip():
            return
        with self._transaction() as db:
            last = db.execute("SELECT text FROM prompts ORDER BY id DESC LIMIT 1").fetchone()
            if last is not None and last["text"] == text:
                return
            cursor = db.execute("INSERT INTO prompts (text, created_at) VALUES (?, ?)", (text, now()))
            assert cursor.lastrowid is not None
            db.execute("DELETE FROM prompts WHERE id <= ?", (cursor.lastrowid - PROMPT_HISTORY_LIMIT,))

    def prompts(self, limit: int = 1000) -> list[str]:
        """The most recent prompts, oldest first and newest last."""
        rows = self._query("SELECT text FROM prompts ORDER BY id DESC LIMIT ?", (limit,))
        return [row["text"] for row in reversed(rows)]


_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str:
    """An FTS5 query matching every word of ``text`` literally, each also as a prefix: ``"asyn"*``."""
    return " ".join(f'"{word}"*' for word in _WORD.findall(text))
