"""Loading the model on a thread while line mode's prompt is already up, so typing starts at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TextIO

from ..engine.protocol import ChatEngine


class EngineLoader:
    """Loads the engine on a thread and reports its steps; :meth:`wait` hands it over or raises its error."""

    def __init__(self, load: Callable[[Callable[[str], None]], ChatEngine]) -> None:
        self.steps: list[str] = []
        self.engine: ChatEngine | None = None
        self.error: BaseException | None = None
        # Called on the loading thread: after each step (to redraw the status line), and when loading
        # fails (to close an open prompt at once).
        self.on_step: Callable[[], None] = lambda: None
        self.on_failure: Callable[[], None] = lambda: None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(load,), name="starchat-load", daemon=True)
        self._thread.start()

    def _run(self, load: Callable[[Callable[[str], None]], ChatEngine]) -> None:
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

    def wait(self, echo: TextIO | None = None) -> ChatEngine:
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
        assert self.engine is not None
        return self.engine
