"""`starchat-tui history`: list, show, search, export, import, rename and remove saved sessions.

Everything printed that came from a user or a model goes through ``make_inert``, so a transcript that
holds escape sequences cannot drive the terminal. Exports are the exception when they go to a file or a
pipe: they are data and must round-trip byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from ..chat.inert import make_inert
from ..errors import EXIT_CODES_HELP, EXIT_OK, UsageError
from ..files import read_text, write_file
from ..store import transcripts
from ..store.sessions import Session, SessionStore, fts_query
from .base import Command
from .options import debug_flag, say

# A shorter prefix is too easy to mistype for a command that deletes.
RM_PREFIX_MIN = 4

EPILOG = f"""\
examples:
  starchat-tui history                          list sessions, newest first
  starchat-tui history show 3f2a                show one (any unique prefix of its ID)
  starchat-tui history search asyncio
  starchat-tui history export 3f2a -o chat.md   Markdown that imports back to the same messages
  starchat-tui history export --all --format jsonl -o data.jsonl   training data
  starchat-tui history import chat.md

{EXIT_CODES_HELP}"""


class History(Command):
    name = "history"
    help = "list, show, search, export, import and remove saved sessions"
    description = "Saved sessions: every chat is saved as it happens."
    epilog = EPILOG

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        commands = parser.add_subparsers(dest="action", metavar="COMMAND")
        common = [debug_flag()]

        listing = commands.add_parser("list", parents=common, help="one line per session, newest first: ID, date, model, title")
        listing.add_argument("-n", "--limit", type=int, help="show only the N most recent")

        show = commands.add_parser("show", parents=common, help="print a session's messages")
        show.add_argument("id", metavar="ID", help="a session ID or a unique prefix of one")

        search = commands.add_parser("search", parents=common, help="sessions whose messages contain every word of TEXT")
        search.add_argument("text", nargs="+", metavar="TEXT")
        search.add_argument("-n", "--limit", type=int, default=50, help="at most N sessions (default 50)")

        export = commands.add_parser("export", parents=common, help="write sessions as Markdown, JSON or JSONL")
        export.add_argument("ids", nargs="*", metavar="ID", help="sessions to export")
        export.add_argument("--all", action="store_true", help="export every session, oldest first")
        export.add_argument("-f", "--format", choices=transcripts.FORMATS,
                            help="md, json or jsonl (the datasets messages format); by default from -o's extension, "
                                 "else md for one session and jsonl for several")
        export.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
        export.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

        imports = commands.add_parser("import", parents=common,
                                      help="save the conversations in FILE as new sessions; prints their IDs")
        imports.add_argument("files", nargs="+", metavar="FILE", help="md, json or jsonl files; - reads stdin")
        imports.add_argument("-f", "--format", choices=transcripts.FORMATS, help="the format (default: from the extension)")
        imports.add_argument("--model", default="unknown", help="the model to record when the file names none")

        rename = commands.add_parser("rename", parents=common,
                                     help="give a session a title; an empty title restores the automatic one")
        rename.add_argument("id", metavar="ID")
        rename.add_argument("title", nargs="*", metavar="TITLE")

        remove = commands.add_parser("rm", parents=common, help="delete sessions")
        remove.add_argument("ids", nargs="+", metavar="ID", help=f"IDs, or prefixes of at least {RM_PREFIX_MIN} characters")

        commands.add_parser("path", parents=common, help="print where the sessions database is")

    def run(self, args: argparse.Namespace) -> int:
        action = args.action or "list"
        if action == "list" and not hasattr(args, "limit"):
            args.limit = None
        store = SessionStore()
        try:
            handler = {
                "list": list_sessions, "show": show, "search": search, "export": export,
                "import": import_files, "rename": rename, "rm": remove, "path": path,
            }[action]
            return handler(store, args)
        finally:
            store.close()


# -- output helpers -------------------------------------------------------------------------------


def local_time(stamp: datetime) -> str:
    return stamp.astimezone().strftime("%Y-%m-%d %H:%M")


def session_line(session: Session, model_width: int = 0) -> str:
    title = make_inert(session.title) if session.title else "(no messages yet)"
    model = make_inert(session.model).ljust(model_width)
    return f"{session.id}  {local_time(session.updated_at)}  {model}  {title}"


# -- commands -------------------------------------------------------------------------------------


def list_sessions(store: SessionStore, args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be 1 or more")
    sessions = store.list_sessions(limit=args.limit)
    if not sessions:
        say("no saved sessions yet; start one with `starchat-tui`")
        return EXIT_OK
    width = min(40, max(len(s.model) for s in sessions))
    for session in sessions:
        print(session_line(session, width))
    return EXIT_OK


def show(store: SessionStore, args: argparse.Namespace) -> int:
    session = store.get_session(args.id)
    out = [f"{session.id}  {make_inert(session.title) or '(no messages yet)'}"]
    details = f"model {make_inert(session.model)} · started {local_time(session.created_at)}"
    details += f" · {session.message_count} messages"
    if session.forked_from:
        details += f" · forked from {session.forked_from}"
    out.append(details)
    if session.settings:
        out.append("settings: " + " ".join(f"{k}={v}" for k, v in session.settings.items()))
    for message in store.conversation(session.id).messages:
        heading = message["role"] + (" (interrupted)" if message.get("interrupted") else "")
        out += ["", f"── {heading} ──", make_inert(message["content"])]
    print("\n".join(out))
    return EXIT_OK


def search(store: SessionStore, args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    if not fts_query(text):
        raise UsageError(f"nothing to search for in {text!r}: give at least one word")
    results = store.search(text, limit=args.limit)
    if not results:
        say(f"no saved session mentions {text!r}")
        return EXIT_OK
    for session, snippet in results:
        print(f"{session.id}  {local_time(session.updated_at)}  {make_inert(session.title)}")
        print(f"    {make_inert(snippet)}")
    return EXIT_OK


def export(store: SessionStore, args: argparse.Namespace) -> int:
    if args.all and args.ids:
        raise UsageError("give session IDs or --all, not both")
    if args.all:
        ids = [s.id for s in reversed(store.list_sessions())]
        if not ids:
            raise UsageError("there are no saved sessions to export")
    elif args.ids:
        ids = [store.get_session(i).id for i in args.ids]
    else:
        raise UsageError("name the session to export (see `starchat-tui history list`), or use --all")
    fmt = args.format or transcripts.format_from_extension(args.output) or ("md" if len(ids) == 1 else "jsonl")
    text = transcripts.render([transcripts.session_transcript(store, i) for i in ids], fmt)
    if args.output and args.output != "-":
        write_file(Path(args.output), text, force=args.force)
        say(f"wrote {len(ids)} session{'s' if len(ids) != 1 else ''} to {args.output}")
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return EXIT_OK


def read_input(name: str) -> str:
    return read_text(
        name, folder_hint="name the transcript files", encoding_hint="transcripts are UTF-8 Markdown, JSON or JSONL"
    )


def import_files(store: SessionStore, args: argparse.Namespace) -> int:
    # Read and check every file before saving anything, so a bad file leaves no half import behind.
    parsed = []
    for name in args.files:
        text = read_input(name)
        fmt = args.format or transcripts.format_from_extension(name) or transcripts.sniff_format(text)
        parsed += transcripts.parse(text, fmt, "stdin" if name == "-" else name)
    for session_id in transcripts.save_transcripts(store, parsed, model=args.model):
        print(session_id)
    return EXIT_OK


def rename(store: SessionStore, args: argparse.Namespace) -> int:
    session = store.get_session(args.id)
    store.rename(session.id, " ".join(args.title))
    print(session_line(store.get_session(session.id)))
    return EXIT_OK


def remove(store: SessionStore, args: argparse.Namespace) -> int:
    sessions = []
    for wanted in args.ids:
        if len(wanted.strip()) < RM_PREFIX_MIN:
            raise UsageError(f"{wanted!r} is too short to delete by: give at least {RM_PREFIX_MIN} characters of the ID")
        sessions.append(store.get_session(wanted))
    for session in sessions:
        store.delete(session.id)
        print(f"removed {session_line(session)}")
    return EXIT_OK


def path(store: SessionStore, args: argparse.Namespace) -> int:
    print(store.path)
    return EXIT_OK
