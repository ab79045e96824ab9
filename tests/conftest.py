"""Shared fixtures: tiny real models built once per test run, and an isolated home for every test."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def tiny_model(models_dir) -> str:
    """A tiny trained GPTBigCode model whose tokenizer carries the StarChat chat_template."""
    from starchat_tui.demo.tiny import build_tiny_model

    return str(build_tiny_model(models_dir / "tiny", chat_template=True))


@pytest.fixture(scope="session")
def tiny_model_plain(models_dir) -> str:
    """The same kind of model with no chat_template: the engine must fall back to the StarChat format."""
    from starchat_tui.demo.tiny import build_tiny_model

    return str(build_tiny_model(models_dir / "tiny-plain", chat_template=False))


@pytest.fixture(scope="session")
def random_model(models_dir) -> str:
    """An untrained tiny model: it rambles on without ending its turn, which long-answer tests need."""
    from starchat_tui.demo.tiny import build_tiny_model

    return str(build_tiny_model(models_dir / "random", train_steps=0, seed=1))


@pytest.fixture(scope="module")
def rambler(random_model):
    """The untrained model loaded: it never ends its turn, so its answers run to max_new_tokens."""
    from starchat_tui.engine import load_engine

    return load_engine(random_model, device="cpu")


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own config, data and cache folders, and the Hub is off limits."""
    home = tmp_path / "home"
    for kind in ("config", "data", "cache"):
        folder = home / kind
        folder.mkdir(parents=True)
        monkeypatch.setenv(f"STARCHAT_TUI_{kind.upper()}_DIR", str(folder))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    for name in list(os.environ):
        # STARCHAT_TUI_BWRAP=off is how CI runs the sandbox tests a second time, on the fallback.
        if name.startswith("STARCHAT_TUI_") and not name.endswith("_DIR") and name != "STARCHAT_TUI_BWRAP":
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def cli_env(isolated_home) -> dict[str, str]:
    """The environment for running starchat-tui as a subprocess inside the isolated home."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def starchat_cmd() -> list[str]:
    """The command line that runs the installed CLI with this interpreter."""
    return [sys.executable, "-m", "starchat_tui"]


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # our own child: reap it, or it lingers as a zombie
            if os.waitpid(pid, os.WNOHANG)[0]:
                return True
        except ChildProcessError:  # someone else's, or already reaped
            pass
        time.sleep(0.05)
    return False


@pytest.fixture
def process_gone():
    """``process_gone(pid)``: whether that process ends within 10 s (it is reaped if it is our child)."""
    return _gone


@pytest.fixture
def terminal_factory(tmp_path, cli_env):
    """``terminal_factory(command)``: a real terminal (tmux) running ``command``, closed after the test."""
    from terminal import Terminal

    opened: list[Terminal] = []

    def start(command: str) -> Terminal:
        terminal = Terminal(tmp_path / "tmux.sock", command, cli_env)
        opened.append(terminal)
        return terminal

    yield start
    for terminal in opened:
        terminal.close()
