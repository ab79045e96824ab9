"""Saved sessions: open, rename, delete, and search every message of every session (FTS5)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from ...chat.inert import make_inert
from ...errors import UsageError
from .ask import AskScreen
from .confirm import ConfirmScreen
from .plain import PlainNotify

if TYPE_CHECKING:
    from ...store.sessions import SessionStore


def when(stamp: Any) -> str:
    """A short local date: today's sessions show the time, older ones the date."""
    if isinstance(stamp, str):
        stamp = datetime.fromisoformat(stamp)
    local = stamp.astimezone() if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc).astimezone()
    today = datetime.now().astimezone().date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%Y-%m-%d")


class SessionsScreen(PlainNotify, Screen[str | None]):
    """Dismisses with the id of the session to open, or None."""

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("enter", "open", "Open", show=True),
        Binding("ctrl+r,f2", "rename", "Rename", show=True),
        Binding("delete,ctrl+d", "delete", "Delete", show=True),
        Binding("ctrl+f,slash", "search", "Search", show=True),
    ]

    def __init__(self, store: SessionStore, current: str | None = None) -> None:
        super().__init__(id="sessions-screen")
        self.store = store
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="sessions-box"):
            yield Static("Saved sessions", classes="screen-title")
            yield Input(placeholder="search every message (words match as prefixes) · Enter goes to the list",
                        id="search")
            yield DataTable(id="session-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="session-info", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("id", "when", "model", "msgs", "title")
        self.refill()
        table.focus()

    def refill(self, query: str = "") -> None:
        table = self.query_one(DataTable)
        table.clear()
        if query.strip():
            found = self.store.search(query, limit=100)
            rows = [(session, snippet) for session, snippet in found]
        else:
            rows = [(session, "") for session in self.store.list_sessions(limit=500)]
        for session, snippet in rows:
            title = make_inert(session.title or "(untitled)")
            if snippet:
                title = f"{title}  — {make_inert(snippet)}"
            marker = "▶ " if session.id == self.current else ""
            # Text, not str: a DataTable reads str cells as markup, and titles are whatever users typed.
            table.add_row(marker + session.id, when(session.updated_at), Text(make_inert(session.model)),
                          str(session.message_count), Text(title), key=session.id)
        info = self.query_one("#session-info", Static)
        if not rows:
            info.update("no sessions match" if query.strip() else "no saved sessions yet")
        else:
            info.update(f"{len(rows)} session(s) · Enter opens · F2 renames · Delete removes · Esc goes back")

    def on_input_changed(self, event: Input.Changed) -> None:
        self.refill(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(DataTable).focus()

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return key.value

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value)

    def action_open(self) -> None:
        selected = self._selected()
        if selected:
            self.dismiss(selected)

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    @work
    async def action_rename(self) -> None:
        selected = self._selected()
        if not selected:
            return
        session = self.store.get_session(selected)
        title = await self.app.push_screen_wait(
            AskScreen(f"Rename session {selected}", session.title, hint="Enter renames · empty: back to the first line")
        )
        if title is None:
            return
        self.store.rename(selected, title)
        self.refill(self.query_one("#search", Input).value)

    @work
    async def action_delete(self) -> None:
        selected = self._selected()
        if not selected:
            return
        if selected == self.current:
            self.notify("This is the open chat: start a new one (Ctrl+N) before deleting it.", severity="warning")
            return
        session = self.store.get_session(selected)
        sure = await self.app.push_screen_wait(
            ConfirmScreen(f"Delete session {selected} ({session.title or 'untitled'}, {session.message_count} "
                          "messages)? This cannot be undone.", yes="Delete", danger=True)
        )
        if sure:
            try:
                self.store.delete(selected)
            except UsageError as error:
                self.notify(str(error), severity="error")
            self.refill(self.query_one("#search", Input).value)

    def action_close(self) -> None:
        if self.focused is self.query_one("#search", Input) and self.query_one("#search", Input).value:
            self.query_one("#search", Input).value = ""
            return
        self.dismiss(None)
