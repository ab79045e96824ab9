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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..chat.attachments import Attachment
from ..config import Settings
from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, StarchatError, UsageError
from .base import Command
from .options import add_model_flags, add_print_flags, load_model, say, settings_from_args

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


@dataclass
class Request:
    """One question for the model; a review split file by file makes one per file, each titled by its path."""

    instruction: str
    attachments: list[Attachment]
    title: str | None = None


@dataclass
class Output:
    """Where and how print mode writes answers: --format, --output FILE and --force."""

    format: str = "text"
    file: Path | None = None
    force: bool = False


class Printer:
    """Writes one request's answer to stdout in the chosen format; keeps the text for --output."""

    def __init__(self, output: Output, model: str) -> None:
        self.output = output
        self.model = model
        self.titled = False  # several answers: each goes under a header naming its file
        self.kept: list[str] = []  # the answers as --output writes them
        self.out = sys.stdout

    def warn(self, line: str) -> None:
        say(line)
        if self.output.format == "jsonl":
            _event("warning", message=line)

    def start(self, request: Request) -> None:
        header = f"## {request.title}\n\n" if self.titled and request.title else ""
        if self.kept:
            header = "\n" + header
        self.kept.append(header)
        if self.output.format == "jsonl":
            _event("start", model=self.model, **({"file": request.title} if request.title else {}))
        elif self.output.format == "text" and header:
            self.out.write(header)

    def delta(self, text: str) -> None:
        from ..chat.inert import make_inert

        if self.output.format == "jsonl":
            _event("delta", text=text)
        elif self.output.format == "text":
            self.out.write(make_inert(text))
            self.out.flush()

    def end(self, request: Request, chat: Any, stats: dict[str, Any]) -> bool:
        """The answer is done; True when it was interrupted."""
        reply = chat.last_reply
        content = reply["content"] if reply else ""
        interrupted = bool(reply and reply.get("interrupted"))
        self.kept.append(content if content.endswith("\n") or not content else content + "\n")
        if self.output.format == "jsonl":
            _event("end", stats=stats, interrupted=interrupted)
        elif self.output.format == "json":
            fields = {"file": request.title} if request.title else {}
            json.dump({"model": self.model, **fields, "reply": content, "interrupted": interrupted, "stats": stats,
                       "messages": chat.conversation.messages}, self.out, ensure_ascii=False)
            self.out.write("\n")
        elif reply is not None and not content.endswith("\n"):
            self.out.write("\n")
        self.out.flush()
        return interrupted


def _event(kind: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"type": kind, **fields}, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@contextmanager
def error_events(args: argparse.Namespace) -> Iterator[None]:
    """With --format jsonl a failure is an event on stdout too, so a script reading only stdout sees it;
    the one-line message on stderr and the exit code stay as they are."""
    try:
        yield
    except StarchatError as error:
        if args.format == "jsonl":
            _event("error", message=str(error), exit_code=error.exit_code)
        raise
    except Exception as error:
        if args.format == "jsonl":
            _event("error", message=f"internal error: {type(error).__name__}: {error}", exit_code=EXIT_INTERNAL)
        raise


def output_from_args(args: argparse.Namespace) -> Output:
    """--format (or --json), --output and --force, checked before any model loads."""
    from ..files import check_writable

    if args.json and args.format not in (None, "json"):
        raise UsageError(f"--json is short for --format json; give one of --json and --format {args.format}")
    output = Output("json" if args.json else args.format or "text",
                    Path(args.output).expanduser() if args.output else None, args.force)
    if args.dry_run and (args.json or args.format or args.output):
        raise UsageError("--dry-run prints the prompt as text: leave out --format, --json and --output")
    if output.file is not None:
        check_writable(output.file, force=output.force)  # refused now, not after the answer is generated
    elif args.force:
        raise UsageError("--force goes with --output FILE: it lets the answer replace that file")
    return output


def answer(settings: Settings, requests: list[Request], output: Output, *, dry_run: bool,
           split: list[Request] | None = None) -> int:
    """Ask each request in turn and print the answers: -p and review, through the session's one stream loop.

    ``split`` is what to ask instead when the first request does not fit the model's context (a review of a
    diff, file by file). Nothing is saved: a chat without a store keeps the session's rules in memory only.
    """
    from ..session.chat_session import ChatSession
    from ..session.interrupt import ctrl_c_calls

    def new_chat(request: Request) -> ChatSession:
        chat = ChatSession(None, model=settings.model, system=settings.system, options=settings.generation)
        chat.attachments = list(request.attachments)
        return chat

    new_chat(requests[0]).resolved_options()  # a bad setting is a usage error before any model loads
    engine = None
    server = None  # with --dry-run against a server: what its requests are printed from
    if dry_run:
        from ..engine.endpoints import remote_target

        target = remote_target(settings.model, settings.section("endpoints"), settings.api)
        if target is not None:
            from ..engine.remote import connect

            # A server's request is what it sees: connect to learn its model, API and context.
            server = connect(target, say)
            renderer = server.renderer
        else:
            from ..demo import resolve_model
            from ..engine.loading import load_prompt_renderer

            renderer = load_prompt_renderer(resolve_model(settings.model, say),
                                            trust_remote_code=settings.trust_remote_code)
    else:
        engine = load_model(settings)
        renderer = engine.renderer
    printer = Printer(output, settings.model)
    if split:
        use = new_chat(requests[0]).context_use(renderer, requests[0].instruction)
        if not use.fits:
            printer.warn(f"the whole diff needs {use.tokens} tokens, more than the {use.budget} the model's "
                f"{use.limit}-token context leaves for a prompt: reviewing it file by file ({len(split)} requests)")
            requests = split
    printer.titled = len(requests) > 1
    interrupted = False
    for request in requests:
        chat = new_chat(request)
        content, cuts = chat.compose(renderer, request.instruction)
        for cut in cuts:
            printer.warn(cut)
        chat.add_user(content)
        if engine is None:
            if printer.titled:
                sys.stdout.write(f"## {request.title}\n\n")
            if server is not None:
                json.dump(server.request(chat.conversation, **chat.resolved_options()), sys.stdout, indent=2)
                sys.stdout.write("\n")
            else:
                sys.stdout.write(renderer.render_prompt(chat.conversation.messages) + ("\n" if printer.titled else ""))
            sys.stdout.flush()
            continue
        printer.start(request)
        # Ctrl+C stops the answer and keeps what came (it is printed, and marked interrupted).
        with ctrl_c_calls(engine.cancel):
            for text in chat.reply(engine):
                printer.delta(text)
        for line in engine.warnings:
            printer.warn(line)
        if printer.end(request, chat, engine.stats.as_dict()):
            interrupted = True
            break  # the user stopped the review: the files left are not asked about
    if engine is None:
        if server is not None:
            server.close()
        return EXIT_OK
    if interrupted:
        say("interrupted" + (f"; {output.file} not written: the answer is not whole" if output.file else ""))
        return EXIT_INTERRUPTED
    if output.file is not None:
        from ..files import write_file

        write_file(output.file, "".join(printer.kept), force=output.force)
        say(f"wrote the answer to {output.file}")
    return EXIT_OK


def ask_or_chat(args: argparse.Namespace) -> int:
    """``starchat-tui [PROMPT]``: print one answer with -p or --dry-run, else open the chat."""
    if "-" in args.file:  # piped input is attached already; reading stdin twice would find it empty
        raise UsageError("-f -: pipe the input in without -f; it is attached as it is")
    if not (args.print or args.dry_run):
        if args.json or args.format or args.output or args.force:
            raise UsageError("--json, --format, --output and --force go with -p/--print")
        from .interactive import open_chat

        return open_chat(settings_from_args(args), " ".join(args.prompt), piped_attachments() + read_attachments(args.file),
                         plain=args.plain, session_id=args.session, continue_last=args.continue_last,
                         overrides=_overrides(args))
    with error_events(args):
        output = output_from_args(args)
        settings = settings_from_args(args)
        instruction = " ".join(args.prompt)
        attachments = piped_attachments() + read_attachments(args.file)
        if not instruction and not attachments:
            raise UsageError(NOTHING_TO_ASK)
        return answer(settings, [Request(instruction, attachments)], output, dry_run=args.dry_run)


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
DIFF_INSTRUCTION = (
    "Review the following {label} (a unified diff: lines starting with - are removed, + added, the rest "
    "is context). Point out bugs, security problems and unclear parts in the changed lines, most important "
    "first, and suggest concrete fixes."
)
NOTHING_STAGED = "nothing to review: there are no staged changes (git add the files to review first)"


class Review(Command):
    name = "review"
    help = "review files, stdin or git changes (--staged, --base, --commit) and print the review"
    description = (
        "Ask the model for a code review and print it: of FILES (- reads stdin), or of git changes.\n\n"
        "  starchat-tui review app.py utils.py\n"
        "  starchat-tui review --staged                 what git commit would commit\n"
        "  starchat-tui review --base main              this branch's commits since it left main\n"
        "  starchat-tui review --commit HEAD~1          one commit, with its message\n\n"
        "With a git flag, FILES limit the diff to those paths. The diff has 10 lines of context around each\n"
        "change. A diff too large for the model's context is reviewed file by file: one request per file,\n"
        "each answer under a '## PATH' header (stderr says so). An empty diff prints 'nothing to review'\n"
        "on stderr and exits 0."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("files", nargs="*", metavar="FILE",
                            help="files to review (- reads stdin); with a git flag, paths that limit the diff")
        git = parser.add_argument_group("git changes").add_mutually_exclusive_group()
        git.add_argument("--staged", action="store_true", help="review the staged changes (git diff --staged)")
        git.add_argument("--base", metavar="REF", help="review the commits since this branch left REF (git diff REF...HEAD)")
        git.add_argument("--commit", metavar="SHA", help="review one commit (git show SHA), with its message")
        parser.add_argument("--prompt", help="the instruction to use instead of the default review request")
        add_print_flags(parser)
        add_model_flags(parser)

    def run(self, args: argparse.Namespace) -> int:
        with error_events(args):
            output = output_from_args(args)
            settings = settings_from_args(args)
            if args.staged or args.base or args.commit:
                return self._review_changes(args, settings, output)
            if not args.files:
                raise UsageError("nothing to review: name files (- for stdin), or --staged, --base REF or --commit SHA")
            attachments = read_attachments(args.files)
            request = Request(args.prompt or REVIEW_INSTRUCTION, attachments)
            return answer(settings, [request], output, dry_run=args.dry_run)

    def _review_changes(self, args: argparse.Namespace, settings: Settings, output: Output) -> int:
        from .. import gitdiff

        if "-" in args.files:
            raise UsageError("- (stdin) does not go with --staged, --base or --commit: pipe the diff to review - instead")
        if args.staged:
            changes = gitdiff.staged(args.files)
        elif args.base:
            changes = gitdiff.since(args.base, args.files)
        else:
            changes = gitdiff.commit(args.commit, args.files)
        if not changes.text.strip():
            say(NOTHING_STAGED if args.staged and not args.files else
                f"nothing to review: git shows no {changes.label}" + (" in the files named" if args.files else ""))
            return EXIT_OK
        instruction = args.prompt or DIFF_INSTRUCTION.format(label=changes.label)
        if changes.message:
            instruction += f"\n\nThe commit message:\n{changes.message}"
        whole = Request(instruction, [Attachment(changes.label, changes.text, fence_language="diff")])
        files = changes.files()
        split = [Request(instruction, [Attachment(f"{changes.label}, {path}", text, fence_language="diff")], path)
                 for path, text in files] if len(files) > 1 else None
        return answer(settings, [whole], output, dry_run=args.dry_run, split=split)
