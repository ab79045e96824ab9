"""Asking from scripts: ``starchat-tui -p``, ``starchat-tui review`` and ``--dry-run``.

Piped input is read to the end and attached to the prompt. stdout carries the answer and nothing else;
progress, warnings and errors go to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Sequence

from ..chat.attachments import Attachment
from ..config import Settings
from ..errors import EXIT_INTERRUPTED, EXIT_OK, UsageError
from .base import Command
from .options import add_model_flags, load_model, say, settings_from_args

NOTHING_TO_ASK = 'nothing to ask: give a prompt (starchat-tui -p "question") or pipe input in'

# ---------------------------------------------------------------------------------------------------
# Input


def stdin_is_piped() -> bool:
    """True when stdin is a pipe or a file; a terminal, /dev/null or a closed stdin is not input."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def _read_stdin():
    """stdin as an attachment, or None when it is empty."""
    from ..chat.attachments import EmptyInput, decode_input

    try:
        return decode_input(sys.stdin.buffer.read(), "stdin")
    except EmptyInput:
        return None
    except ValueError as error:
        raise UsageError(str(error)) from None


def read_stdin_attachment():
    """stdin, asked for by name (``review -``): empty is an error, since it was the input meant."""
    attachment = _read_stdin()
    if attachment is None:
        raise UsageError("stdin is an empty pipe: there is nothing to attach (use </dev/null when no input is meant)")
    return attachment


def piped_attachments() -> list:
    """What was piped in, if anything. An empty pipe is no input (a cron or CI job with nothing to pipe),
    not an error: only asking nothing at all is."""
    if not stdin_is_piped():
        return []
    attachment = _read_stdin()
    return [attachment] if attachment is not None else []


def read_attachments(paths: Sequence[str]):
    """Each file (``-`` for stdin) as an attachment, by the chat's rules for /add; the first that cannot be
    attached is the error."""
    from ..session.workspace import read_file

    return [read_stdin_attachment() if path == "-" else read_file(path) for path in paths]


# ---------------------------------------------------------------------------------------------------
# Print mode


def answer(settings: Settings, instruction: str, attachments: list[Attachment], *, as_json: bool,
           dry_run: bool) -> int:
    """Ask one question and print the answer: -p and review, through the session's one stream loop.

    Nothing is saved: a chat without a store keeps the session's rules in memory only.
    """
    from ..chat.inert import make_inert
    from ..session.chat_session import ChatSession
    from ..session.interrupt import ctrl_c_calls

    chat = ChatSession(None, model=settings.model, system=settings.system, options=settings.generation)
    chat.resolved_options()  # a bad setting is a usage error before any model loads
    chat.attachments = list(attachments)
    if dry_run:
        from ..engine.endpoints import remote_target

        target = remote_target(settings.model, settings.section("endpoints"), settings.api)
        if target is not None:
            from ..engine.remote import connect

            # A server's request is what it sees: connect to learn its model, API and context, then print it.
            server = connect(target, say)
            content, cuts = chat.compose(server.renderer, instruction)
            for cut in cuts:
                say(cut)
            chat.add_user(content)
            json.dump(server.request(chat.conversation, **chat.resolved_options()), sys.stdout, indent=2)
            print()
            server.close()
            return EXIT_OK
        from ..demo import resolve_model
        from ..engine.loading import load_prompt_renderer

        renderer = load_prompt_renderer(resolve_model(settings.model, say), trust_remote_code=settings.trust_remote_code)
        content, cuts = chat.compose(renderer, instruction)
        for cut in cuts:
            say(cut)
        chat.add_user(content)
        sys.stdout.write(renderer.render_prompt(chat.conversation.messages))
        sys.stdout.flush()
        return EXIT_OK

    engine = load_model(settings)
    content, cuts = chat.compose(engine.renderer, instruction)
    for cut in cuts:
        say(cut)
    chat.add_user(content)
    out = sys.stdout
    # Ctrl+C stops the answer and keeps what came (it is printed, and in --json marked interrupted).
    with ctrl_c_calls(engine.cancel):
        for text in chat.reply(engine):
            if not as_json:
                out.write(make_inert(text))
                out.flush()
    for line in engine.warnings:
        say(line)
    reply = chat.last_reply
    interrupted = bool(reply and reply.get("interrupted"))
    if as_json:
        json.dump(
            {
                "model": settings.model,
                "reply": reply["content"] if reply else "",
                "interrupted": interrupted,
                "stats": engine.stats.as_dict(),
                "messages": chat.conversation.messages,
            },
            out,
            ensure_ascii=False,
        )
        out.write("\n")
    elif reply and not reply["content"].endswith("\n"):
        out.write("\n")
    out.flush()
    if interrupted:
        say("interrupted")
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


def ask_or_chat(args: argparse.Namespace) -> int:
    """``starchat-tui [PROMPT]``: print one answer with -p or --dry-run, else open the chat."""
    settings = settings_from_args(args)
    instruction = " ".join(args.prompt)
    if "-" in args.file:  # piped input is attached already; reading stdin twice would find it empty
        raise UsageError("-f -: pipe the input in without -f; it is attached as it is")
    attachments = piped_attachments() + read_attachments(args.file)
    if args.print or args.dry_run:
        if not instruction and not attachments:
            raise UsageError(NOTHING_TO_ASK)
        return answer(settings, instruction, attachments, as_json=args.json, dry_run=args.dry_run)
    if args.json:
        raise UsageError("--json goes with -p/--print")
    from .interactive import open_chat

    return open_chat(settings, instruction, attachments, plain=args.plain, session_id=args.session,
                     continue_last=args.continue_last, overrides=_overrides(args))


def _overrides(args: argparse.Namespace) -> list[str]:
    """The settings the command line gave, which win over a continued session's own."""
    overrides = [name for name in ("model", "system") if getattr(args, name)]
    if args.option:
        overrides.append("generation")
    return overrides


REVIEW_INSTRUCTION = (
    "Review the following code. Point out bugs, security problems and unclear parts, most important first, "
    "and suggest concrete fixes."
)


class Review(Command):
    name = "review"
    help = "review files (or - for stdin) and print the review"
    description = "Ask the model for a code review of FILES and print it."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE", help="files to review; - reads stdin")
        parser.add_argument("--prompt", help="the instruction to use instead of the default review request")
        parser.add_argument("--json", action="store_true", help="print one JSON object with the reply and stats")
        add_model_flags(parser)

    def run(self, args: argparse.Namespace) -> int:
        settings = settings_from_args(args)
        attachments = read_attachments(args.files)
        return answer(settings, args.prompt or REVIEW_INSTRUCTION, attachments, as_json=args.json, dry_run=args.dry_run)
