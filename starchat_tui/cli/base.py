"""A subcommand is an object: it adds its parser to the main one, then runs the parsed arguments.

The main help's list of commands is made from these objects, so a command is declared once. A module
that defines a command imports only what its parser needs; the work imports happen in ``run``, which
keeps ``starchat-tui --help`` fast.
"""

from __future__ import annotations

import argparse

from ..errors import EXIT_CODES_HELP
from .options import debug_flag


class Command:
    """One ``starchat-tui NAME`` subcommand."""

    name: str = ""
    help: str = ""  # one line, for the main help
    description: str | None = None  # the command's own --help; the help line when None
    epilog: str = EXIT_CODES_HELP
    usage: str | None = None
    # Arguments the parser does not know are handed to run() as args.extra instead of being an error
    # (train: its options are every TrainingArguments field, parsed later by its own parser).
    takes_unknown: bool = False

    def register(self, subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(
            self.name, help=self.help, description=self.description or self.help, epilog=self.epilog,
            usage=self.usage, parents=[debug_flag()], formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        parser.set_defaults(command=self)
        self.add_arguments(parser)
        return parser

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The command's own flags."""

    def run(self, args: argparse.Namespace) -> int:
        raise NotImplementedError
