"""The offline default model: found in the cache folder, or built there on first use.

The build (:mod:`.build`) writes a corpus of templated coding dialogues, checks every code block in it,
trains a tokenizer and a small GPTBigCode with starchat-tui's own training package, and measures the
result on held-out tasks, in a few minutes on a CPU. :mod:`.tiny` is something else: a placeholder
model built in seconds, for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..config import DEMO_MODEL, cache_dir

DEMO_NOTE = (
    "the demo model is tiny and was trained in minutes on generated dialogues: it writes, fixes and explains "
    "small Python functions on numbers, lists and strings, and declines the rest. For real answers use "
    "-m HuggingFaceH4/starchat-beta (or any chat model)"
)
# Bumped whenever the build changes, so an old cached build is not used by a newer starchat-tui.
DEMO_VERSION = "demo-v3"


def demo_folder() -> Path:
    return cache_dir() / "models" / DEMO_VERSION


def demo_info(folder: Path | None = None) -> dict[str, Any]:
    """What the build recorded about the demo model (empty when it is not built)."""
    from .build import METADATA_FILE

    try:
        return json.loads(((folder or demo_folder()) / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return {}


def describe_score(info: dict[str, Any]) -> str:
    score, natural = info.get("heldout_pass_at_1"), info.get("natural_pass_at_1")
    if score is None:
        return f"pass@1 on its held-out tasks: {info.get('eval_note', 'not measured')}"
    text = f"pass@1 on {info.get('heldout_tasks', '?')} held-out templated tasks {100 * score:.0f}%"
    if natural is not None:
        text += f", on {info.get('natural_tasks', '?')} held-out requests in everyday words {100 * natural:.0f}%"
    return text


@contextlib.contextmanager
def _build_lock(folder: Path) -> Iterator[None]:
    """One build at a time per cache folder: a second starchat-tui waits, then finds the model built."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Windows; the atomic rename still keeps builds whole
        yield
        return
    with open(folder / ".demo-build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def demo_model_path(progress: Callable[[str], None] | None = None, *, rebuild: bool = False,
                    config: Any = None) -> Path:
    """The demo model's folder, built there first if it is missing (or ``rebuild`` asks for it).

    ``config`` (a :class:`~.build.BuildConfig`) changes what a build makes; tests build a reduced model.
    """
    target = demo_folder()
    if (target / "config.json").exists() and not rebuild:
        return target
    from .build import BuildConfig, build_demo_model

    report = progress or (lambda step: None)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(target.parent):
        if (target / "config.json").exists() and not rebuild:
            return target  # another process built it while this one waited
        report(f"building the demo model in {target} (first run only; a few minutes)")
        # Build beside the target and rename into place, so a crash never leaves a half-written model behind.
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
        try:
            result = build_demo_model(staging, config or BuildConfig(), version=DEMO_VERSION, progress=report)
            _fix_paths(staging, target)
            if rebuild and target.exists():
                old = target.with_name(f".old-{DEMO_VERSION}-{os.getpid()}")
                os.rename(target, old)
                shutil.rmtree(old, ignore_errors=True)
            os.rename(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    report(f"demo model built in {result.seconds:.0f} s; {describe_score(demo_info(target))}")
    return target


def resolve_model(name: str | None, progress: Callable[[str], None] | None = None) -> str:
    """What to load for the model ``name``: the demo model's folder for "demo" or no name (built there
    first if missing, and the note that it is tiny goes to ``progress``), else ``name`` itself.

    Every front-end calls this before it loads an engine; the engine itself knows no demo.
    """
    if name and name != DEMO_MODEL:
        return name
    folder = demo_model_path(progress)
    if progress is not None:
        progress(f"note: {DEMO_NOTE}")
    return str(folder)


def _fix_paths(staging: Path, target: Path) -> None:
    """The card names the folder the model will live in, not the staging folder it was built in."""
    card = staging / "README.md"
    if card.exists():
        card.write_text(card.read_text(encoding="utf-8").replace(str(staging), str(target)), encoding="utf-8")
