"""Versioned schema migrations, numbered by SQLite's ``user_version``.

Each migration runs once, in its own transaction together with the version bump, so a crash halfway
leaves the database at the previous version. Migrations are only ever appended: a released step is
never edited, because databases in the field have already run it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError


@dataclass(frozen=True)
class Migration:
    """One schema step: the version it brings the database to, and the SQL that does it."""

    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sessions, messages with a full-text index, prompt history",
        """
        CREATE TABLE sessions (
            id          TEXT PRIMARY KEY,
            title       TEXT NOT NULL DEFAULT '',
            renamed     INTEGER NOT NULL DEFAULT 0,  -- 1 once the user chose the title
            created_at  TEXT NOT NULL,               -- ISO 8601, UTC
            updated_at  TEXT NOT NULL,
            model       TEXT NOT NULL,
            system      TEXT,
            settings    TEXT NOT NULL DEFAULT '{}',  -- JSON: generation settings
            forked_from TEXT
        );
        CREATE INDEX sessions_updated ON sessions (updated_at);

        CREATE TABLE messages (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id  TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            position    INTEGER NOT NULL,
            role        TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content     TEXT NOT NULL,
            extra       TEXT NOT NULL DEFAULT '{}',  -- JSON: keys beyond role and content
            final       INTEGER NOT NULL DEFAULT 1,  -- 0 while an answer is still streaming
            created_at  TEXT NOT NULL,
            UNIQUE (session_id, position)
        );

        CREATE VIRTUAL TABLE messages_fts USING fts5 (
            content, content = 'messages', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END;
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
        END;
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
            INSERT INTO messages_fts (messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
            INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
        END;

        CREATE TABLE prompts (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            text        TEXT NOT NULL,
            created_at  TEXT NOT NULL
        );
        """,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def schema_version(connection: sqlite3.Connection) -> int:
    return connection.execute("PRAGMA user_version").fetchone()[0]


def migrate(connection: sqlite3.Connection, path: Path | str = "sessions.db") -> int:
    """Bring the database up to :data:`LATEST_VERSION`; return the number of steps applied."""
    current = schema_version(connection)
    if current > LATEST_VERSION:
        raise UsageError(
            f"{path} was written by a newer starchat-tui (schema {current}, this one knows {LATEST_VERSION}); "
            "upgrade starchat-tui to open it"
        )
    applied = 0
    for migration in MIGRATIONS:
        if migration.version <= current:
            continue
        # executescript() would commit on its own; run the statements one by one inside our transaction.
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            if schema_version(connection) >= migration.version:
                connection.execute("COMMIT")
                continue
            for statement in split_statements(migration.sql):
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {migration.version}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        applied += 1
    return applied


def split_statements(script: str) -> list[str]:
    """Split a script into complete statements (triggers hold semicolons of their own)."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements
