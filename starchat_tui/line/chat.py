"""Line mode's chat: the loop that reads a line, sends it or runs it as a command, and prints the answer.

Answers stream as plain, inert text. Every turn goes through :class:`~starchat_tui.session.chat_session.ChatSession`
(saved as it happens, in the store the full-screen app uses) and every slash command through the one registry;
this module is the :class:`~starchat_tui.session.front.Front` they talk through, in a terminal. Ctrl+C during an
answer stops it and keeps what came, marked interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TextIO

from ..chat.attachments import Attachment
from ..chat.inert import make_inert
from ..errors import EXIT_OK, ModelLoadError, StarchatError, UsageError
from ..session import commands
from ..session.chat_session import ChatSession, ContextUse
from ..session.code_runs import CodeRunner, RunChoice
from ..session.interrupt import ctrl_c_calls
from ..session.workspace import attach_mentions
from .loader import EngineLoader
from .terminal import PROMPT, build_prompt_session, terminal_input, typing_ahead_kept

if TYPE_CHECKING:
    from prompt_toolkit.input import Input

    from ..chat.blocks import CodeBlock
    from ..config import Settings
    from ..engine.protocol import ChatEngine
    from ..sandbox.probe import BackendInfo
    from ..sandbox.result import Result
    from ..store.sessions import SessionStore

# Reads one answer from the user: (question, default text, multiline) -> text, or None when they cancel.
LineReader = Callable[[str, str, bool], "str | None"]


class ModelFailed(Exception):
    """The model did not load: line mode cannot go on. Also closes a prompt the user is typing in."""


class LineChat:
    """One line-mode chat: the session, the engine loading behind it, and the terminal it talks through."""

    def __init__(self, settings: Settings, chat: ChatSession, *, out: TextIO, err: TextIO,
                 read_line: LineReader | None = None) -> None:
        self.settings = settings
        self.chat = chat
        self.out = out
        self.err = err
        self.read_line: LineReader = read_line or self._unavailable
        self.code_runner = CodeRunner()
        self.loader: EngineLoader | None = None  # started by start_loading()
        self.draft = ""  # the next prompt's text: the message being edited
        self.leaving = False
        self.context: ContextUse | None = None  # measured when the toolbar next shows, after any change
        self._notes_shown = 0

    @staticmethod
    def _unavailable(question: str, default: str, multiline: bool) -> str | None:
        raise UsageError(f"{question}: no terminal to answer on")

    # -- the model --

    def start_loading(self, model: str | None = None) -> None:
        settings = self.settings
        name = model or self.chat.model

        def load(progress: Callable[[str], None]) -> ChatEngine:
            from transformers.utils import logging as transformers_logging

            from .. import load_engine

            # Progress bars drawn from this thread would scribble over the prompt; the toolbar shows the steps.
            transformers_logging.disable_progress_bar()
            return load_engine(
                name, device=settings.device, dtype=settings.dtype, quantize=settings.quantize,
                trust_remote_code=settings.trust_remote_code, compile=settings.compile, progress=progress,
                endpoints=settings.section("endpoints"), api=settings.api,
            )

        self.loader = EngineLoader(load)
        self._notes_shown = 0

    @property
    def engine(self) -> ChatEngine | None:
        loader = self.loader
        return loader.engine if loader is not None and loader.ready and loader.error is None else None

    @property
    def busy(self) -> bool:
        return False  # commands run between answers

    def wait_for_engine(self) -> ChatEngine:
        assert self.loader is not None, "start_loading() first"
        waiting = not self.loader.ready
        if waiting:
            self.warn(f"waiting for the model ({self.loader.status}) ...")
        try:
            engine = self.loader.wait(echo=self.err if waiting else None)
        except BaseException as error:
            if self.loader.error is error:
                raise ModelFailed() from error
            raise  # Ctrl+C while waiting
        notes = [step for step in self.loader.steps if step.startswith("note:")]
        if waiting:  # every step, notes included, was just printed
            self._notes_shown = len(notes)
        for note in notes[self._notes_shown:]:
            self.warn(note)
        self._notes_shown = len(notes)
        return engine

    def toolbar(self) -> str:
        loader = self.loader
        if loader is None or not loader.ready or loader.error is not None:
            return make_inert(loader.status if loader is not None else "")
        engine = loader.engine
        assert engine is not None
        parts = [self.chat.model, f"{engine.device} {engine.dtype}", self.context_use(engine).short()]
        if engine.stats.new_tokens:
            parts += [f"{engine.stats.tokens_per_s:.1f} tok/s", f"cached {engine.stats.cached_tokens}"]
        if self.chat.session_id:
            parts.append(f"session {self.chat.session_id}")
        if self.chat.attachments:
            parts.append(f"{len(self.chat.attachments)} attached (/add lists them)")
        return make_inert(" · ".join(parts))

    def context_use(self, engine: ChatEngine) -> ContextUse:
        """The session's measure of the context, kept until the chat changes (the toolbar redraws often)."""
        if self.context is None:
            self.context = self.chat.context_use(engine.renderer)
        return self.context

    # -- turns --

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def send(self, text: str) -> None:
        """Save the user's message at once, then answer it."""
        content = text
        if self.chat.attachments:
            content, cuts = self.chat.compose(self.wait_for_engine().renderer, text)
            for cut in cuts:
                self.warn(f"note: {cut}")
        self.chat.add_user(content)
        self.answer()

    def answer(self) -> None:
        """Stream a reply through the session's stream-and-save loop; Ctrl+C stops it and keeps it."""
        engine = self.wait_for_engine()
        streamed = False
        with ctrl_c_calls(engine.cancel):
            for chunk in self.chat.reply(engine):
                self.out.write(make_inert(chunk))
                self.out.flush()
                streamed = True
        reply = self.chat.last_reply
        if reply is not None:
            ending = "" if reply["content"].endswith("\n") or not streamed else "\n"
            self.out.write(ending + ("[interrupted]\n" if reply.get("interrupted") else ""))
            self.out.flush()
        for line in engine.warnings:
            self.warn(f"note: {line}")
        self.context = None
        if reply is not None and not reply.get("interrupted"):
            commands.compact_if_due(self)

    def handle(self, text: str) -> None:
        """One line the user entered: a command, or a message to send."""
        self.context = None  # either may change what the next prompt holds
        if commands.is_command(text):
            self.draft = ""
            commands.execute(self, text.strip())
        elif attach_mentions(self, text):
            self.send(commands.as_message(text))
        else:
            self.draft = text  # a file it names could not be attached: the message waits in the prompt

    # -- the Front the commands talk through --

    def status(self, text: str) -> None:
        if text:
            self.warn(f"{text} · Ctrl+C stops it")

    def note(self, text: str, kind: str = "info") -> None:
        if kind == "info":
            self.say(make_inert(text))
        else:
            self.warn(f"{'error' if kind == 'error' else 'note'}: {make_inert(text)}")

    def ask(self, title: str, default: str = "", *, multiline: bool = False) -> str | None:
        hint = " (Alt+Enter sends)" if multiline else ""
        return self.read_line(f"{title}{hint}: ", default, multiline)

    def confirm(self, question: str, *, yes: str = "Yes", danger: bool = False, detail: str = "") -> bool:
        if detail:
            self.say(make_inert(detail.rstrip("\n")))
        answer = self.read_line(f"{question} [{yes}: y, No: N] ", "", False)
        return (answer or "").strip().lower() in ("y", "yes")

    def pick(self, title: str, items: list[tuple[str, str]]) -> str | None:
        self.say(title)
        for number, (_, label) in enumerate(items, 1):
            self.say(f"  {number:>3}  {make_inert(label)}")
        answer = (self.read_line("number (Enter cancels): ", "", False) or "").strip()
        if not answer:
            return None
        if not answer.isdigit() or not 1 <= int(answer) <= len(items):
            raise UsageError(f"{answer!r}: give a number from 1 to {len(items)}")
        return items[int(answer) - 1][0]

    def show_text(self, title: str, text: str) -> None:
        self.say(f"# {make_inert(title)}")
        self.say(make_inert(text))

    def attachments_changed(self) -> None:
        pass  # each change is a note already; the next message shows them being sent

    def copy(self, text: str) -> str:
        from ..clipboard import copy_text, osc52

        def send_osc52(value: str) -> None:
            if self.out.isatty():
                self.out.write(osc52(value))
                self.out.flush()

        return copy_text(send_osc52, text)

    def show_chat(self, chat: ChatSession, note: str = "") -> None:
        chat.attachments = self.chat.attachments
        self.chat = chat
        self.context = None
        if note:
            self.say(note)

    def generate(self) -> None:
        self.answer()

    def edit_text(self, text: str) -> None:
        self.draft = text
        self.say("editing your last message: Enter sends it in place of the old one and what followed; "
                 "Ctrl+C cancels")

    def switch_model(self, name: str) -> None:
        self.start_loading(name)
        self.say(f"loading {name}; the next answer comes from it")

    def open_sessions(self) -> None:
        store = self.chat.store
        assert store is not None
        sessions = store.list_sessions(limit=20)
        if not sessions:
            self.say("no saved sessions yet")
            return
        picked = self.pick("Saved sessions, newest first:", [
            (s.id, f"{s.id}  {s.updated_at:%Y-%m-%d %H:%M}  {s.title or '(untitled)'}") for s in sessions
        ])
        if picked is not None:
            self.show_chat(ChatSession.open(store, picked), f"now in session {picked}")

    def theme_names(self) -> list[str]:
        return []

    def set_theme(self, name: str) -> None:
        raise UsageError("themes belong to the full-screen app; run starchat-tui without --plain")

    def show_help(self) -> None:
        for line in commands.help_lines():
            self.say(f"  {line}")
        self.say("  Enter sends, Alt+Enter or Ctrl+J adds a line, Up/Down and Ctrl+R search the history,")
        self.say("  Tab completes a command, Ctrl+C stops an answer (and keeps it), Ctrl+D leaves.")

    def choose_run(self, block: CodeBlock, language: str, backend: BackendInfo) -> RunChoice:
        self.say(f"# block {block.number} ({language})")
        self.say(make_inert(block.code))
        where = f"sandbox: {backend.name} · {backend.reason}" if backend.safe else \
            f"NO SANDBOX ({backend.reason}): it would run as you, with your files and network"
        self.warn(where)
        answer = (self.read_line("run it? [r]un, [a]lways in this chat, [c]opy, [N]o: ", "", False) or "").strip().lower()
        action = {"r": "run", "run": "run", "y": "run", "a": "always", "c": "copy"}.get(answer, "skip")
        return RunChoice(action, block.code)

    def show_run(self, block: CodeBlock, language: str, result: Result) -> None:
        status = "timed out" if result.timed_out else f"exit {result.exit_code}"
        self.say(f"▶ block {block.number} · {language} · {result.backend} · {status} · {result.duration:.2f} s")
        if result.stdout:
            self.out.write(make_inert(result.stdout.rstrip("\n")) + "\n")
        if result.stderr:
            self.err.write(make_inert(result.stderr.rstrip("\n")) + "\n")
        for why in (result.stopped, result.note):
            if why:
                self.warn(f"note: {why}")
        for image in result.images:
            self.say(f"image: {image}")

    def quit(self) -> None:
        self.leaving = True


def run_line_mode(
    settings: Settings,
    instruction: str = "",
    attachments: list[Attachment] | None = None,
    session_id: str | None = None,
    *,
    continue_last: bool = False,
    overrides: Collection[str] = (),
    store: SessionStore | None = None,
) -> int:
    """Run line mode until the user leaves; return the exit code.

    ``session_id`` (an ID or a unique prefix) or ``continue_last`` continues a saved session, keeping its
    model, system message and settings except those named in ``overrides`` ("model", "system",
    "generation"). ``instruction`` is sent at once; ``attachments`` go with it, or with the first message
    typed when there is no instruction.
    """
    from ..store import SessionStore

    if not sys.stdout.isatty():
        raise UsageError("no terminal to open the chat in: use -p to print an answer instead")
    prompt_input = terminal_input()
    owned = store is None
    store = store or SessionStore()
    try:
        chat = ChatSession.choose(store, settings, session_id=session_id, continue_last=continue_last,
                                  overrides=overrides)
        chat.attachments = list(attachments or [])
        line = LineChat(settings, chat, out=sys.stdout, err=sys.stderr)
        try:
            with typing_ahead_kept(prompt_input.fileno()):
                line.start_loading()
                return _loop(line, store, prompt_input, instruction)
        except ModelFailed:
            if line.chat.session_id:
                line.warn(f"starchat-tui: your messages are saved in session {line.chat.session_id}")
            assert line.loader is not None
            error = line.loader.error
            if isinstance(error, StarchatError):
                raise error from None
            raise ModelLoadError(f"could not load {line.chat.model}: {type(error).__name__}: {error}") from None
    finally:
        if owned:
            store.close()


def _loop(line: LineChat, store: SessionStore, prompt_input: Input, instruction: str) -> int:
    chat = line.chat
    if chat.session_id:
        line.say(f"continuing session {chat.session_id} ({chat.turn_count()} of your messages so far); /help for commands")
    else:
        line.say("starchat-tui line mode: Enter sends, Alt+Enter adds a line, /help for commands, Ctrl+D leaves")
    if chat.attachments and not instruction:
        line.say(f"attached {', '.join(a.source for a in chat.attachments)}: it goes with your first message")
    if instruction:
        line.say(PROMPT + make_inert(instruction))
        _guarded(line, line.send, instruction)

    session = build_prompt_session(line, store, prompt_input, line.toolbar)

    def read_line(question: str, default: str, multiline: bool) -> str | None:
        from prompt_toolkit import PromptSession

        try:
            return PromptSession(input=prompt_input).prompt(question, default=default, multiline=multiline)
        except (KeyboardInterrupt, EOFError):
            return None

    line.read_line = read_line

    def close_prompt() -> None:
        app = session.app
        if app.is_running and app.loop is not None:
            app.loop.call_soon_threadsafe(lambda: app.exit(exception=ModelFailed()) if app.is_running else None)

    while not line.leaving:
        loader = line.loader
        assert loader is not None
        if loader.error is not None:
            raise ModelFailed()
        loader.on_failure = close_prompt
        loader.on_step = session.app.invalidate  # thread-safe: schedules a redraw when running
        try:
            text = session.prompt(default=line.draft)
        except KeyboardInterrupt:
            if line.chat.editing is not None:
                line.chat.editing = None
                line.draft = ""
                line.warn("edit cancelled; nothing changed")
            else:
                line.warn("(Ctrl+D or /quit leaves)")
            continue
        except EOFError:
            return EXIT_OK
        except ModelFailed:
            # Keep what was being typed: it is in the prompt history for next time.
            store.add_prompt(session.default_buffer.text)
            raise
        line.draft = ""
        if text.strip():
            _guarded(line, line.handle, text)
    return EXIT_OK


def _guarded(line: LineChat, action: Callable[[str], Any], argument: str) -> None:
    """Run one action; a user error or a failed answer is one line, and line mode goes on."""
    try:
        action(argument)
    except KeyboardInterrupt:
        line.warn("stopped")
    except ModelFailed:
        raise
    except StarchatError as error:
        line.warn(f"error: {error}")
    except Exception as error:  # a failure in generation: say so, keep the session
        if os.environ.get("STARCHAT_TUI_DEBUG") == "1":
            raise
        line.warn(f"error: {type(error).__name__}: {error} (/retry tries again)")
