"""Saved sessions: SQLite storage and transcripts (Markdown, JSON, JSONL); `starchat-tui history` is cli/history.py.

    from starchat_tui.store import SessionStore, Session

    store = SessionStore()                       # data_dir()/sessions.db
    session = store.create_session("demo")
    store.add_message(session.id, "user", "hello")
"""

from .sessions import Session, SessionStore

__all__ = ["Session", "SessionStore"]
