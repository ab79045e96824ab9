"""Line mode's terminal: the prompt_toolkit prompt, its history and completion, and keys typed ahead."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..session import commands

if TYPE_CHECKING:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer
    from prompt_toolkit.history import History
    from prompt_toolkit.input import Input

    from ..session.front import Front
    from ..store.sessions import SessionStore

PROMPT = "> "
CONTINUATION = "… "


def make_history(store: SessionStore) -> History:
    """A prompt_toolkit history backed by the store's prompt history, shared with the full-screen app."""
    from prompt_toolkit.history import History

    class StoreHistory(History):
        def load_history_strings(self) -> Iterator[str]:
            return iter(reversed(store.prompts()))  # prompt_toolkit wants the newest first

        def store_string(self, string: str) -> None:
            store.add_prompt(string)

    return StoreHistory()


def make_completer(front: Front) -> Completer:
    """Completion for slash commands and their first argument, from the one command registry."""
    from prompt_toolkit.completion import Completer, Completion

    class SlashCompleter(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Iterator[Completion]:
            text = document.text_before_cursor
            for option in commands.complete(text, lambda name: commands.dynamic_choices(front, name)):
                yield Completion(option.value, -len(text), display=option.label, display_meta=option.help)

    return SlashCompleter()


@contextmanager
def typing_ahead_kept(fd: int | None) -> Iterator[None]:
    """Between prompts, keep what the user types ahead for the next prompt, unechoed and unchanged.

    prompt_toolkit puts the terminal in raw mode only while it reads. In between (the model loading, an
    answer streaming) the terminal would echo keys into the answer and turn Enter into Ctrl+J, which the
    prompt reads as "new line" instead of "send". Ctrl+C still raises SIGINT, which stops an answer.
    """
    try:
        import termios
    except ImportError:  # not a POSIX terminal: nothing to adjust
        yield
        return
    try:
        saved = termios.tcgetattr(fd) if fd is not None else None
    except (OSError, termios.error):
        saved = None
    if saved is None:
        yield
        return
    quiet = list(saved)
    quiet[0] &= ~termios.ICRNL
    quiet[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, quiet)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


def terminal_input() -> Input:
    """prompt_toolkit input from the terminal, even when stdin was a pipe (drained by the caller)."""
    from prompt_toolkit.input import create_input

    if sys.stdin is not None and sys.stdin.isatty():
        return create_input()
    try:
        tty = open("/dev/tty")  # noqa: SIM115 - lives as long as line mode
    except OSError:
        raise UsageError("no terminal to read your input from: use -p to print an answer instead") from None
    return create_input(stdin=tty)


def build_prompt_session(front: Front, store: SessionStore, prompt_input: Input,
                         toolbar: Callable[[], str]) -> PromptSession:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.lexers import PygmentsLexer
    from pygments.lexers.markup import MarkdownLexer

    bindings = KeyBindings()

    @bindings.add("enter", eager=True)
    def _send(event: Any) -> None:
        event.current_buffer.validate_and_handle()

    @bindings.add("escape", "enter", eager=True)
    @bindings.add("c-j", eager=True)
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    return PromptSession(
        message=PROMPT,
        multiline=True,
        prompt_continuation=lambda width, line_number, wrap_count: CONTINUATION.rjust(width),
        key_bindings=bindings,
        history=make_history(store),
        lexer=PygmentsLexer(MarkdownLexer),
        completer=make_completer(front),
        complete_while_typing=True,
        reserve_space_for_menu=4,
        bottom_toolbar=toolbar,
        input=prompt_input,
    )
