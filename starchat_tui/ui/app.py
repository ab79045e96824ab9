"""The Textual app: a thin router for themes, keys, the command palette, screens and the loaded engine.

The model loads after the first paint, in an engine process of its own (see
:mod:`starchat_tui.engine.process`: generation there never waits for the UI's painting); the chat screen
hears about each loading step, and the user can type (and even send) meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, SystemCommand
from textual.screen import Screen

if TYPE_CHECKING:
    from ..engine.process import EngineProcess

from ..config import Settings
from ..engine.protocol import ChatEngine
from ..errors import EXIT_MODEL, EXIT_OK, StarchatError
from ..session.chat_session import ChatSession
from . import keymap
from .highlight import CodeStyle, code_style
from .palette import PALETTE
from .screens.chat import ChatScreen
from .screens.help import HelpScreen
from .screens.history import SessionsScreen
from .themes import DEFAULT_THEME, ThemeCatalog, remember_theme


class StarchatApp(App[int]):
    """starchat-tui's full-screen chat."""

    CSS_PATH = "app.tcss"
    TITLE = "starchat-tui"
    BINDINGS = keymap.bindings("app")

    def __init__(
        self,
        settings: Settings,
        chat: ChatSession,
        *,
        catalog: ThemeCatalog,
        user_keymap: dict[str, str] | None = None,
        instruction: str = "",
        attachments: list | None = None,
        send_first: bool = False,
        engine: ChatEngine | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.catalog = catalog
        self.user_keymap = dict(user_keymap or {})
        self.engine: ChatEngine | None = None
        self.engine_error = ""
        self.loading_model: str | None = None
        self._preloaded = engine  # an engine already loaded (tests, benchmarks): no loading on start
        self._loading_engine: EngineProcess | None = None  # the engine process loading a model right now
        self._chat_screen = ChatScreen(chat, attachments=attachments, instruction=instruction, send_first=send_first)
        for spec in catalog.themes.values():
            self.register_theme(spec.textual_theme())
        self.theme = settings.theme if settings.theme in self.available_themes else DEFAULT_THEME

    @property
    def chat_screen(self) -> ChatScreen:
        return self._chat_screen

    @property
    def code_style(self) -> CodeStyle:
        """The Pygments style code blocks use under the current theme."""
        theme = self.current_theme
        style, _, tokens = self.catalog.code_style_of(theme.name, theme.dark)
        return code_style(style, tuple(sorted(tokens.items())))

    def on_mount(self) -> None:
        self.set_keymap(self.user_keymap)
        self.push_screen(self._chat_screen)
        self.watch(self, "theme", self._theme_changed, init=False)
        for problem in self.catalog.problems:
            self.notify(problem, severity="warning", timeout=10, markup=False)
        if self._preloaded is not None:
            self.call_later(self._loaded, self._preloaded)
        else:
            # Start loading once the first frame is out, so nothing competes with it.
            self.call_after_refresh(self.load_model, self.settings.model)

    def _theme_changed(self, name: str) -> None:
        try:
            path = remember_theme(name)
        except (OSError, StarchatError, ValueError) as error:
            self.notify(f"theme {name} is on, but it could not be remembered: {error}", severity="warning",
                        markup=False)
        else:
            self.log(f"theme {name} remembered in {path}")

    # -- the engine ------------------------------------------------------------------------------------

    def load_model(self, name: str) -> None:
        """Load ``name`` on a worker thread; the current engine keeps answering until it is ready."""
        self.loading_model = name
        self.engine_error = ""
        self._chat_screen.engine_progress(f"{name}: starting")
        self._load(name)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load(self, name: str) -> None:
        def progress(step: str) -> None:
            try:
                self.call_from_thread(self._chat_screen.engine_progress, step)
            except RuntimeError:  # the app is closing
                pass

        try:
            from ..engine.endpoints import remote_target

            target = remote_target(name, self.settings.section("endpoints"), self.settings.api)
            if target is not None:
                from ..engine.remote import connect

                self._warm_up()
                engine: ChatEngine = connect(target, progress)
            else:
                engine = self._load_in_process(name, progress)
        except StarchatError as error:
            self.call_from_thread(self._load_failed, str(error))
        except Exception as error:  # an unexpected failure is still shown, never a crash
            self.call_from_thread(self._load_failed, f"could not load {name}: {type(error).__name__}: {error}")
        else:
            try:
                self.call_from_thread(self._loaded, engine)
            except RuntimeError:  # the app closed while the model loaded: nobody will use this engine
                engine.close()

    def _load_in_process(self, name: str, progress: Callable[[str], None]) -> ChatEngine:
        """A local model loads in an engine process of its own, so the UI never waits on torch."""
        from ..demo import resolve_model
        from ..engine.process import spawn_engine_process

        settings = self.settings
        engine = self._loading_engine = spawn_engine_process()
        try:
            self._warm_up()
            engine.load(resolve_model(name, progress), progress, name=name, device=settings.device,
                        dtype=settings.dtype, quantize=settings.quantize, trust_remote_code=settings.trust_remote_code,
                        compile=settings.compile)
        except BaseException:
            engine.close()
            raise
        finally:
            self._loading_engine = None
        return engine

    @staticmethod
    def _warm_up() -> None:
        """Import, while the model loads, what the first answer would otherwise wait for on the UI thread:
        the generation settings (transformers, most of a second) and the lexers answers use most."""
        from ..engine.generation import known_settings
        from .highlight import lexer_for

        known_settings()
        for language in ("python", "bash"):
            lexer_for(language)

    async def _loaded(self, engine: ChatEngine) -> None:
        previous, self.engine = self.engine, engine
        self.loading_model = None
        self._close_engine(previous)
        await self._chat_screen.engine_ready(engine)

    def _close_engine(self, engine: ChatEngine | None) -> None:
        """End an engine process this app started (one handed in belongs to whoever made it)."""
        if engine is not None and engine is not self._preloaded:
            engine.close()

    def on_unmount(self) -> None:
        self._close_engine(self.engine)
        loading = self._loading_engine
        if loading is not None:  # quitting mid-load: end that process too, or the load holds up the exit
            loading.close()

    def _load_failed(self, message: str) -> None:
        self.loading_model = None
        self.engine_error = message
        self._chat_screen.engine_failed(message)

    # -- actions ---------------------------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.user_keymap))

    @work(group="sessions")
    async def action_sessions(self) -> None:
        chosen = await self.push_screen_wait(SessionsScreen(self._chat_screen.chat.store, self._chat_screen.chat.session_id))
        if chosen:
            await self._chat_screen.open_session(chosen)

    def action_new_chat(self) -> None:
        self._chat_screen.action_clear()

    async def action_quit(self) -> None:
        await self._chat_screen.stop_and_wait()
        # Quitting after the model never loaded is a failed run for scripts that check the exit code.
        code = EXIT_MODEL if self.engine is None and self.engine_error else EXIT_OK
        self.exit(code, return_code=code)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if screen is self._chat_screen:
            for entry in PALETTE:
                yield SystemCommand(entry.title, entry.help, partial(self.run_action, entry.action, self._chat_screen))
