"""Line mode (`starchat-tui --plain`): a prompt_toolkit REPL for terminals where a full-screen app is unwanted.

Answers stream as plain, inert text. Input is multiline (Enter sends; Alt+Enter or Ctrl+J adds a line)
and highlighted as Markdown; prompt history is the store's, shared with the full-screen app. Every turn
is saved as it happens in the same session store, and Ctrl+C during an answer stops it and keeps what
came, marked interrupted.

The model loads on a background thread while the prompt is already up, so typing starts at once.
"""

from __future__ import annotations

import difflib
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .chat.conversation import Conversation
from .chat.inert import make_inert
from .errors import EXIT_OK, ModelLoadError, StarchatError, UsageError

# While streaming, the partial answer is saved at most this often (the store commits each save).
SAVE_INTERVAL_S = 0.5
PROMPT = "> "
CONTINUATION = "… "


# -- the model, loading in the background ----------------------------------------------------------


class EngineLoader:
    """Loads the engine on a thread and reports its steps; :meth:`wait` hands it over or raises its error."""

    def __init__(self, load: Callable[[Callable[[str], None]], Any]) -> None:
        self.steps: list[str] = []
        self.engine: Any = None
        self.error: BaseException | None = None
        # Called on the loading thread: after each step (to redraw the status line), and when loading
        # fails (to close an open prompt at once).
        self.on_step: Callable[[], None] = lambda: None
        self.on_failure: Callable[[], None] = lambda: None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(load,), name="starchat-load", daemon=True)
        self._thread.start()

    def _run(self, load: Callable[[Callable[[str], None]], Any]) -> None:
        def progress(step: str) -> None:
            self.steps.append(step)
            self.on_step()

        try:
            self.engine = load(progress)
        except BaseException as error:  # handed to the main thread by wait()
            self.error = error
            self._done.set()
            self.on_failure()
        finally:
            self._done.set()
            self.on_step()

    @property
    def ready(self) -> bool:
        return self._done.is_set()

    @property
    def status(self) -> str:
        if self.error is not None:
            return f"could not load the model: {self.error}"
        return self.steps[-1] if self.steps else "loading the model"

    def wait(self, echo: TextIO | None = None) -> Any:
        """The engine, once loaded; while waiting, new loading steps are printed to ``echo``."""
        shown = 0
        while not self._done.wait(0.1 if echo else None):
            if echo is not None:
                for step in self.steps[shown:]:
                    print(f"  {step}", file=echo, flush=True)
                shown = len(self.steps)
        if echo is not None:
            for step in self.steps[shown:]:
                print(f"  {step}", file=echo, flush=True)
        if self.error is not None:
            raise self.error
        return self.engine


# -- input helpers --------------------------------------------------------------------------------


def code_blocks(markdown: str) -> list[str]:
    """The contents of the fenced code blocks in ``markdown``, in order (an unclosed last one included)."""
    blocks: list[str] = []
    fence: str | None = None
    lines: list[str] = []
    for line in markdown.splitlines():
        match = re.match(r"^ {0,3}(`{3,}|~{3,})(.*)$", line)
        if fence is None:
            if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
                fence, lines = match.group(1), []
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) and not match.group(2).strip():
            blocks.append("\n".join(lines) + "\n")
            fence = None
        else:
            lines.append(line)
    if fence is not None:
        blocks.append("\n".join(lines) + ("\n" if lines else ""))
    return blocks


def make_history(store: Any):
    """A prompt_toolkit history backed by the store's prompt history, shared with the full-screen app."""
    from prompt_toolkit.history import History

    class StoreHistory(History):
        def load_history_strings(self) -> Iterator[str]:
            return iter(reversed(store.prompts()))  # prompt_toolkit wants the newest first

        def store_string(self, string: str) -> None:
            store.add_prompt(string)

    return StoreHistory()


@dataclass(frozen=True)
class Command:
    """A slash command: its name, the arguments it takes, what it does."""

    name: str
    args: str
    help: str


COMMANDS = (
    Command("help", "", "this list"),
    Command("system", "[TEXT | off]", "show or set the session's system message"),
    Command("set", "[KEY VALUE]", "set a generation setting (no arguments: show them all)"),
    Command("unset", "KEY", "put a generation setting back to its default"),
    Command("show", "prompt|params|template|session|stats", "show the exact prompt, the settings, the template, ..."),
    Command("retry", "", "regenerate the last answer"),
    Command("edit", "", "edit the last message and send it again (drops what came after it)"),
    Command("fork", "[N]", "continue in a copy of this session (of its first N messages)"),
    Command("clear", "", "start a new session; this one stays saved"),
    Command("save", "N PATH [--force]", "save code block N of the last answer to PATH"),
    Command("export", "[md|json|jsonl] [PATH] [--force]", "write this session to a file"),
    Command("quit", "", "leave (also /exit, Ctrl+D)"),
)
ALIASES = {"exit": "quit", "bye": "quit", "q": "quit", "regen": "retry", "?": "help"}
SHOW_TOPICS = ("prompt", "params", "template", "session", "stats")


def make_completer(setting_names: Callable[[], Collection[str]]):
    """Completion for slash commands and their first argument."""
    from prompt_toolkit.completion import Completer, Completion

    arguments = {
        "show": lambda: SHOW_TOPICS,
        "set": setting_names,
        "unset": setting_names,
        "export": lambda: ("md", "json", "jsonl"),
        "system": lambda: ("off",),
    }

    class SlashCompleter(Completer):
        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            if not text.startswith("/") or "\n" in text:
                return
            words = text[1:].split(" ")
            if len(words) == 1:
                for command in COMMANDS:
                    if command.name.startswith(words[0]):
                        yield Completion(command.name, -len(words[0]), display_meta=command.help)
            elif len(words) == 2 and words[0] in arguments:
                for option in sorted(arguments[words[0]]()):
                    if option.startswith(words[1]):
                        yield Completion(option, -len(words[1]))

    return SlashCompleter()


# -- the REPL -------------------------------------------------------------------------------------


class LineChat:
    """One line-mode chat: the conversation, its saved session, and the engine that answers it."""

    def __init__(self, settings: Any, store: Any, *, out: TextIO, err: TextIO) -> None:
        self.settings = settings
        self.store = store
        self.loader: EngineLoader | None = None  # started by start_loading(), once the model is known
        self.out = out
        self.err = err
        self.model: str = settings.model
        self.generation: dict[str, Any] = dict(settings.generation)
        self.conversation = Conversation(system=settings.system)
        self.session_id: str | None = None
        self.attachments: list = []
        self.context_used: int | None = None
        self.edit_at: int | None = None  # /edit: resending replaces the messages from here on
        self.notes_shown = 0

    def start_loading(self) -> None:
        settings, model = self.settings, self.model

        def load(progress: Callable[[str], None]) -> Any:
            from transformers.utils import logging as transformers_logging

            from . import load_engine  # the API's, which finds or builds the demo model first

            # Progress bars drawn from this thread would scribble over the prompt; the status line
            # shows the loading steps instead.
            transformers_logging.disable_progress_bar()
            return load_engine(
                model, device=settings.device, dtype=settings.dtype, quantize=settings.quantize,
                trust_remote_code=settings.trust_remote_code, progress=progress,
            )

        self.loader = EngineLoader(load)

    # -- sessions --

    def open_session(self, session_id: str, overrides: Collection[str]) -> None:
        """Continue a saved session; its model, system message and settings win unless overridden."""
        session = self.store.get_session(session_id)
        self.session_id = session.id
        self.conversation = self.store.conversation(session.id)
        if "system" in overrides:
            self.conversation.system = self.settings.system
            self.store.set_system(session.id, self.settings.system)
        if "model" not in overrides:
            self.model = session.model
        elif session.model != self.model:
            self.store.set_model(session.id, self.model)
        self.generation = {**session.settings, **(self.settings.generation if "generation" in overrides else {})}
        if self.generation != session.settings:
            self.store.set_settings(session.id, self.generation)

    def ensure_session(self) -> str:
        if self.session_id is None:
            session = self.store.create_session(self.model, self.conversation.system, self.generation)
            self.session_id = session.id
        return self.session_id

    # -- output --

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def show_notes(self) -> None:
        notes = [step for step in self.loader.steps if step.startswith("note:")]
        for note in notes[self.notes_shown:]:
            self.warn(note)
        self.notes_shown = len(notes)

    def status(self) -> str:
        if not self.loader.ready or self.loader.error is not None:
            return self.loader.status
        engine = self.loader.engine
        parts = [self.model, f"{engine.device} {engine.dtype}"]
        if self.context_used is not None:
            parts.append(f"context {self.context_used}/{engine.context_limit}")
        if engine.stats.new_tokens:
            parts.append(f"{engine.stats.tokens_per_s:.1f} tok/s")
            parts.append(f"cached {engine.stats.cached_tokens}")
        if self.session_id:
            parts.append(f"session {self.session_id}")
        return " · ".join(parts)

    # -- turns --

    def engine(self) -> Any:
        waiting = not self.loader.ready
        if waiting:
            self.warn(f"waiting for the model ({self.loader.status}) ...")
        try:
            engine = self.loader.wait(echo=self.err if waiting else None)
        except BaseException as error:
            if self.loader.error is error:
                raise _ModelFailed() from error
            raise  # Ctrl+C while waiting
        if waiting:  # every step, notes included, was just printed
            self.notes_shown = sum(1 for step in self.loader.steps if step.startswith("note:"))
        self.show_notes()
        return engine

    def options(self) -> dict[str, Any]:
        from .engine.generation import resolve_generation_options

        return resolve_generation_options(self.generation)

    def send(self, text: str) -> None:
        """Save the user's message at once, then answer it."""
        if self.edit_at is not None:
            self._truncate(self.edit_at)
            self.edit_at = None
        if self.attachments:
            from .engine.render import fit_attachments

            engine = self.engine()
            text, cuts = fit_attachments(engine.renderer, self.conversation, text, self.attachments,
                                         self.options()["max_new_tokens"])
            for cut in cuts:
                self.warn(f"note: {cut}")
            self.attachments = []
        session_id = self.ensure_session()
        self.store.add_message(session_id, "user", text)
        self.conversation.add("user", text)
        self.answer()

    def answer(self) -> None:
        """Stream a reply to the conversation, saving it as it comes; Ctrl+C stops it and keeps it."""
        engine = self.engine()
        options = self.options()
        session_id = self.ensure_session()
        count_before = len(self.conversation.messages)
        pieces: list[str] = []
        reply_id: int | None = None
        saved_at = 0.0
        try:
            with ctrl_c_cancels(engine):
                for chunk in engine.stream(self.conversation, **options):
                    self.out.write(make_inert(chunk))
                    self.out.flush()
                    pieces.append(chunk)
                    now = time.monotonic()
                    if reply_id is None:
                        reply_id = self.store.add_message(session_id, "assistant", "".join(pieces), final=False)
                        saved_at = now
                    elif now - saved_at >= SAVE_INTERVAL_S:
                        self.store.update_message(reply_id, "".join(pieces))
                        saved_at = now
        finally:
            # Whatever happened, what came is saved and stays in the conversation.
            if len(self.conversation.messages) == count_before and pieces:
                self.conversation.add("assistant", "".join(pieces), interrupted=True)
            if len(self.conversation.messages) > count_before:
                reply = self.conversation.messages[-1]
                interrupted = bool(reply.get("interrupted"))
                if reply_id is None:
                    self.store.add_message(session_id, "assistant", reply["content"], **({"interrupted": True} if interrupted else {}))
                else:
                    self.store.update_message(reply_id, reply["content"], interrupted=interrupted, final=True)
                ending = "" if reply["content"].endswith("\n") or not pieces else "\n"
                self.out.write(ending + ("[interrupted]\n" if interrupted else ""))
                self.out.flush()
        for line in engine.warnings:
            self.warn(f"note: {line}")
        self.context_used = engine.stats.prompt_tokens + engine.stats.new_tokens

    # -- slash commands --

    def run_command(self, line: str) -> bool:
        """Do a slash command; return False when it asks to leave."""
        name, _, rest = line[1:].partition(" ")
        name = ALIASES.get(name, name)
        rest = rest.strip()
        handler = getattr(self, f"cmd_{name}", None)
        if handler is None:
            close = difflib.get_close_matches(name, [c.name for c in COMMANDS], n=1)
            hint = f"did you mean /{close[0]}? " if close else ""
            raise UsageError(f"unknown command /{name}: {hint}/help lists them (start with // to send a /)")
        return handler(rest) is not False

    def cmd_help(self, rest: str) -> None:
        width = max(len(f"/{c.name} {c.args}") for c in COMMANDS)
        for command in COMMANDS:
            self.say(f"  {f'/{command.name} {command.args}':<{width}}  {command.help}")
        self.say("  Enter sends, Alt+Enter or Ctrl+J adds a line, Up/Down and Ctrl+R search the history,")
        self.say("  Ctrl+C stops an answer (and keeps it), Ctrl+D leaves. Start with // to send a line that begins with /.")
        self.say("  To switch models, leave and run: starchat-tui --plain -m MODEL -c")

    def cmd_quit(self, rest: str) -> bool:
        return False

    def cmd_system(self, rest: str) -> None:
        if not rest:
            self.say(make_inert(self.conversation.system) if self.conversation.system else "(no system message)")
            return
        text = None if rest.lower() in ("off", "none", "-") else rest
        self.conversation.system = text
        if self.session_id:
            self.store.set_system(self.session_id, text)
        self.say("system message cleared" if text is None else "system message set")

    def cmd_set(self, rest: str) -> None:
        from .config import parse_value

        if not rest:
            self.cmd_show("params")
            return
        key, _, value = rest.partition(" ")
        if not value.strip():
            raise UsageError(f"/set {key} needs a value, for example /set {key} 0.2")
        candidate = {**self.generation, key: parse_value(value.strip())}
        self._apply_generation(candidate)
        self.say(f"{key} = {candidate[key]!r}")

    def cmd_unset(self, rest: str) -> None:
        if rest not in self.generation:
            raise UsageError(f"{rest or 'KEY'} is not set here; /show params lists the settings")
        self._apply_generation({k: v for k, v in self.generation.items() if k != rest})
        self.say(f"{rest} is back to its default")

    def _apply_generation(self, candidate: dict[str, Any]) -> None:
        from .engine.generation import resolve_generation_options

        resolve_generation_options(candidate)  # raises a one-line UsageError on a bad key or value
        self.generation = candidate
        if self.session_id:
            self.store.set_settings(self.session_id, candidate)

    def cmd_show(self, rest: str) -> None:
        topic = rest or "prompt"
        if topic == "params":
            for key, value in sorted(self.options().items()):
                mark = "" if key in self.generation else "  (default)"
                self.say(f"  {key} = {value!r}{mark}")
        elif topic == "prompt":
            # What the model would see next: the history fitted to its context, as the engine fits it.
            renderer = self.engine().renderer
            fitted = renderer.fit(self.conversation.messages, self.options()["max_new_tokens"])
            self.say(make_inert(renderer.render_prompt(fitted.messages)))
            if fitted.dropped:
                self.warn(f"note: the {fitted.dropped_turns} oldest turn(s) do not fit the context and are left out")
        elif topic == "template":
            self.say(make_inert(self.engine().renderer.template_source))
        elif topic == "session":
            if self.session_id is None:
                self.say("not saved yet: the session is saved with its first message")
            else:
                session = self.store.get_session(self.session_id)
                self.say(f"session {session.id} · {make_inert(session.title) or '(untitled)'} · model {make_inert(session.model)}")
                self.say(f"saved in {self.store.path}")
        elif topic == "stats":
            stats = self.engine().stats
            for key, value in stats.as_dict().items():
                self.say(f"  {key} = {round(value, 3) if isinstance(value, float) else value}")
        else:
            raise UsageError(f"/show {topic}: show one of {', '.join(SHOW_TOPICS)}")

    def cmd_retry(self, rest: str) -> None:
        messages = self.conversation.messages
        if not messages or messages[-1]["role"] == "system":
            raise UsageError("nothing to retry yet: send a message first")
        if messages[-1]["role"] == "assistant":
            self._truncate(len(messages) - 1)
        self.answer()

    def cmd_edit(self, rest: str) -> None:
        users = [i for i, m in enumerate(self.conversation.messages) if m["role"] == "user"]
        if not users:
            raise UsageError("no message to edit yet")
        self.edit_at = users[-1]
        self.say("editing your last message: Enter sends it in place of the old one and what followed; Ctrl+C cancels")

    def _truncate(self, keep: int) -> None:
        """Keep the first ``keep`` conversation messages (the system message counts), here and in the store."""
        del self.conversation.messages[keep:]
        if self.session_id:
            has_system = self.conversation.system is not None
            self.store.truncate(self.session_id, keep - (1 if has_system else 0))

    def cmd_fork(self, rest: str) -> None:
        if self.session_id is None:
            raise UsageError("nothing to fork yet: the session is saved with its first message")
        stored = len(self.store.messages(self.session_id))
        try:
            upto = int(rest) if rest else stored
        except ValueError:
            raise UsageError(f"/fork {rest}: give a number of messages, for example /fork 2") from None
        fork = self.store.fork(self.session_id, upto)
        old = self.session_id
        self.session_id = fork.id
        self.conversation = self.store.conversation(fork.id)
        self.say(f"now in session {fork.id}, a copy of the first {upto} messages of {old}")

    def cmd_clear(self, rest: str) -> None:
        old = self.session_id
        self.session_id = None
        self.conversation = Conversation(system=self.conversation.system)
        self.context_used = None
        self.say(f"new session; the last one is saved as {old}" if old else "new session")

    def cmd_save(self, rest: str) -> None:
        from .files import write_file

        words = rest.split()
        force = "--force" in words
        words = [w for w in words if w != "--force"]
        if len(words) != 2 or not words[0].isdigit():
            raise UsageError("usage: /save N PATH, for example /save 1 sort.py")
        answers = [m for m in self.conversation.messages if m["role"] == "assistant"]
        blocks = code_blocks(answers[-1]["content"]) if answers else []
        number = int(words[0])
        if not 1 <= number <= len(blocks):
            raise UsageError(f"the last answer has {len(blocks)} code block(s); there is no block {number}")
        write_file(Path(words[1]).expanduser(), blocks[number - 1], force=force)
        self.say(f"saved block {number} to {words[1]}")

    def cmd_export(self, rest: str) -> None:
        from .store import transcripts
        from .files import write_file

        words = rest.split()
        force = "--force" in words
        words = [w for w in words if w != "--force"]
        fmt = words.pop(0) if words and words[0] in transcripts.FORMATS else None
        if len(words) > 1:
            raise UsageError("usage: /export [md|json|jsonl] [PATH] [--force]")
        if self.session_id is None:
            raise UsageError("nothing to export yet: the session is saved with its first message")
        fmt = transcripts.format_for(words[0] if words else None, fmt)
        target = Path(words[0]).expanduser() if words else Path(f"starchat-{self.session_id}.{fmt}")
        text = transcripts.render([transcripts.session_transcript(self.store, self.session_id)], fmt)
        write_file(target, text, force=force)
        self.say(f"wrote {target}")


@contextmanager
def ctrl_c_cancels(engine: Any) -> Iterator[None]:
    """While streaming, Ctrl+C asks the engine to stop instead of raising KeyboardInterrupt.

    The stream then ends on its own within a decode step, and the engine appends the partial reply
    marked interrupted, so nothing is torn down halfway.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: engine.cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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


def terminal_input():
    """prompt_toolkit input from the terminal, even when stdin was a pipe (drained by the caller)."""
    from prompt_toolkit.input import create_input

    if sys.stdin is not None and sys.stdin.isatty():
        return create_input()
    try:
        tty = open("/dev/tty", "r")  # noqa: SIM115 - lives as long as the REPL
    except OSError:
        raise UsageError("no terminal to read your input from: use -p to print an answer instead") from None
    return create_input(stdin=tty)


def build_prompt_session(chat: LineChat, prompt_input: Any):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.key_binding import KeyBindings
    from prompt_toolkit.lexers import PygmentsLexer
    from pygments.lexers.markup import MarkdownLexer

    bindings = KeyBindings()

    @bindings.add("enter", eager=True)
    def _send(event) -> None:
        event.current_buffer.validate_and_handle()

    @bindings.add("escape", "enter", eager=True)
    @bindings.add("c-j", eager=True)
    def _newline(event) -> None:
        event.current_buffer.insert_text("\n")

    def setting_names() -> Collection[str]:
        from .engine.generation import DEFAULTS

        return {*DEFAULTS, "do_sample", "repetition_penalty", "seed", "min_p", "typical_p", *chat.generation}

    return PromptSession(
        message=PROMPT,
        multiline=True,
        prompt_continuation=lambda width, line_number, wrap_count: CONTINUATION.rjust(width),
        key_bindings=bindings,
        history=make_history(chat.store),
        lexer=PygmentsLexer(MarkdownLexer),
        completer=make_completer(setting_names),
        complete_while_typing=True,
        reserve_space_for_menu=4,
        bottom_toolbar=lambda: make_inert(chat.status()),
        input=prompt_input,
    )


def run_repl(
    settings: Any,
    instruction: str = "",
    attachments: list | None = None,
    session_id: str | None = None,
    *,
    overrides: Collection[str] = (),
) -> int:
    """Run line mode until the user leaves; return the exit code.

    ``session_id`` (an ID or a unique prefix) continues a saved session: its model, system message and
    generation settings are used, except those named in ``overrides`` ("model", "system", "generation"),
    which come from ``settings`` because the user gave them on the command line. ``instruction`` is sent
    at once; ``attachments`` go with it, or with the first message typed when there is no instruction.
    """
    from .store import SessionStore

    if not sys.stdout.isatty():
        raise UsageError("no terminal to open the chat in: use -p to print an answer instead")
    prompt_input = terminal_input()
    store = SessionStore()
    try:
        chat = LineChat(settings, store, out=sys.stdout, err=sys.stderr)
        if session_id:
            chat.open_session(session_id, overrides)
        try:
            with typing_ahead_kept(prompt_input.fileno()):
                chat.start_loading()
                return _loop(chat, prompt_input, instruction, attachments or [])
        except _ModelFailed:
            if chat.session_id:
                chat.warn(f"starchat-tui: your messages are saved in session {chat.session_id}")
            error = chat.loader.error
            if isinstance(error, StarchatError):
                raise error from None
            raise ModelLoadError(f"could not load {chat.model}: {type(error).__name__}: {error}") from None
    finally:
        store.close()


class _ModelFailed(Exception):
    """The model did not load: line mode cannot go on. Also closes a prompt the user is typing in."""


def _loop(chat: LineChat, prompt_input: Any, instruction: str, attachments: list) -> int:
    if chat.session_id:
        turns = sum(1 for m in chat.conversation.messages if m["role"] == "user")
        chat.say(f"continuing session {chat.session_id} ({turns} of your messages so far); /help for commands")
    else:
        chat.say("starchat-tui line mode: Enter sends, Alt+Enter adds a line, /help for commands, Ctrl+D leaves")
    chat.attachments = list(attachments)
    if attachments and not instruction:
        names = ", ".join(a.source for a in attachments)
        chat.say(f"attached {names}: it goes with your first message")
    if instruction:
        chat.say(PROMPT + make_inert(instruction))
        _guarded(chat, chat.send, instruction)

    session = build_prompt_session(chat, prompt_input)

    def close_prompt() -> None:
        app = session.app
        if app.is_running and app.loop is not None:
            app.loop.call_soon_threadsafe(lambda: app.exit(exception=_ModelFailed()) if app.is_running else None)

    chat.loader.on_failure = close_prompt
    chat.loader.on_step = session.app.invalidate  # thread-safe: schedules a redraw when running
    while True:
        if chat.loader.error is not None:
            raise _ModelFailed()
        default = ""
        if chat.edit_at is not None:
            default = chat.conversation.messages[chat.edit_at]["content"]
        try:
            text = session.prompt(default=default)
        except KeyboardInterrupt:
            if chat.edit_at is not None:
                chat.edit_at = None
                chat.warn("edit cancelled; nothing changed")
            else:
                chat.warn("(Ctrl+D or /quit leaves)")
            continue
        except EOFError:
            return EXIT_OK
        except _ModelFailed:
            # Keep what was being typed: it is in the prompt history for next time.
            chat.store.add_prompt(session.default_buffer.text)
            raise
        if not text.strip():
            continue
        if text.startswith("/") and not text.startswith("//"):
            chat.edit_at = None
            if _guarded(chat, chat.run_command, text.strip()) is False:
                return EXIT_OK
            continue
        message = text[1:] if text.startswith("//") else text
        _guarded(chat, chat.send, message)


def _guarded(chat: LineChat, action: Callable[[str], Any], argument: str) -> Any:
    """Run one action and return its result; a user error or a failed answer is one line, and the REPL goes on."""
    try:
        return action(argument)
    except KeyboardInterrupt:
        chat.warn("stopped")
    except _ModelFailed:
        raise
    except StarchatError as error:
        chat.warn(f"error: {error}")
    except Exception as error:  # a failure in generation: say so, keep the session
        if os.environ.get("STARCHAT_TUI_DEBUG") == "1":
            raise
        chat.warn(f"error: {type(error).__name__}: {error} (/retry tries again)")
    return None
