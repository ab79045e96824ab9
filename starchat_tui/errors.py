"""Errors a user can cause, each with the exit code the command line documents.

Anything else that escapes is our bug: exit 1, and a traceback only with --debug.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "exit codes: 0 ok, 1 internal error (rerun with --debug for the traceback), "
    "2 bad usage or input, 3 model could not be loaded, 130 interrupted"
)


class StarchatError(Exception):
    """An error with a one-line message for the user and an exit code."""

    exit_code = EXIT_INTERNAL


class UsageError(StarchatError):
    """Bad flags, bad input or bad settings: the user can fix it."""

    exit_code = EXIT_USAGE


class ModelLoadError(StarchatError):
    """The model or its tokenizer could not be loaded."""

    exit_code = EXIT_MODEL
