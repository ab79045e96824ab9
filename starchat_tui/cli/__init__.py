"""The command line: a thin skin over the Python API.

``starchat-tui [PROMPT]`` opens the chat (or prints one answer with ``-p``); ``starchat-tui NAME ...``
runs one of the subcommands in :data:`COMMANDS`, each an object in its own module of this package. The
modules import only argparse-level things at the top, so ``starchat-tui --help`` stays fast and never
imports torch, transformers or textual.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import EXIT_CODES_HELP, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, StarchatError, UsageError
from .ask import Review, ask_or_chat
from .base import Command
from .demo import Demo
from .doctor import Doctor
from .eval import Eval
from .history import History
from .options import Parser, add_model_flags, add_print_flags, debug_flag, say
from .paths import Paths
from .run import Run
from .train import Train

COMMANDS: dict[str, Command] = {
    command.name: command for command in (Review(), Paths(), History(), Run(), Doctor(), Train(), Demo(), Eval())
}

DESCRIPTION = """\
A local-first coding assistant for the terminal, on StarChat, StarCoder or any chat model.

  starchat-tui                      open the chat app (the demo model unless -m is given)
  starchat-tui -p "question"        print one answer to stdout, for scripts
  cat x.py | starchat-tui -p "explain this"
  starchat-tui -f app.py -p "why does this fail?"   attach files to the question
  starchat-tui review x.py y.py     review files
  starchat-tui review --staged      review what git would commit (--base REF, --commit SHA)
"""


def _epilog() -> str:
    lines = ["commands (starchat-tui COMMAND --help for each):"]
    lines += [f"  {name:<10} {command.help}" for name, command in COMMANDS.items()]
    lines += [
        "",
        "settings come from flags, then STARCHAT_TUI_* variables (STARCHAT_TUI_MODEL, ...), then",
        "config.toml in the config folder (see `starchat-tui paths`), then defaults.",
        "",
        EXIT_CODES_HELP,
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """``starchat-tui [PROMPT]``: the chat, or one printed answer."""
    parser = Parser(
        prog="starchat-tui", description=DESCRIPTION, epilog=_epilog(), parents=[debug_flag()],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("prompt", nargs="*", help="the first message (joined with spaces)")
    parser.add_argument("-p", "--print", action="store_true", help="print the answer to stdout and exit")
    parser.add_argument("-f", "--file", action="append", default=[], metavar="PATH",
                        help="attach a text file to the first message (repeatable; also /add PATH in the chat)")
    parser.add_argument("--plain", action="store_true", help="a line-mode prompt instead of the full-screen app")
    sessions = parser.add_mutually_exclusive_group()
    sessions.add_argument("-c", "--continue", dest="continue_last", action="store_true", help="continue the last session")
    sessions.add_argument("--session", metavar="ID", help="continue the session with this ID (or an ID prefix)")
    parser.add_argument("--version", action="version", version=f"starchat-tui {__version__}")
    add_print_flags(parser)
    add_model_flags(parser)
    return parser


def build_command_parser() -> argparse.ArgumentParser:
    """``starchat-tui COMMAND ...``: one parser holding every subcommand's."""
    parser = Parser(prog="starchat-tui", add_help=False, parents=[debug_flag()])
    subparsers = parser.add_subparsers(metavar="COMMAND", required=True)
    for command in COMMANDS.values():
        command.register(subparsers)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    # `starchat-tui --debug history` names a command too.
    first = next((arg for arg in argv if arg != "--debug"), None)
    if first not in COMMANDS:
        args = build_parser().parse_args(argv)
        args.command = None
        return args
    args, extra = build_command_parser().parse_known_args(argv)
    if extra and not args.command.takes_unknown:
        name = args.command.name
        raise UsageError(f"{name}: unrecognized arguments: {' '.join(extra)} (see starchat-tui {name} --help)")
    args.extra = extra
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("STARCHAT_TUI_DEBUG") == "1"
    try:
        try:
            args = parse(argv)
        except SystemExit as done:  # --help and --version: printed, and nothing else to do
            return done.code or EXIT_OK
        debug = debug or getattr(args, "debug", False)
        args.debug = debug
        return args.command.run(args) if args.command else ask_or_chat(args)
    except StarchatError as error:
        if debug:
            raise
        say(f"error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        say("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours, and nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # our bug: say so in one line, traceback only with --debug
        if debug:
            raise
        say(f"internal error: {type(error).__name__}: {error} (rerun with --debug for the traceback)")
        return EXIT_INTERNAL
