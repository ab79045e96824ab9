"""The offline default model: found in the cache folder, or built there on first use."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..config import cache_dir

DEMO_NOTE = (
    "the demo model is a tiny placeholder trained for seconds on a few templated dialogues: its answers are "
    "not useful. For real answers use -m HuggingFaceH4/starchat-beta (or any chat model)"
)
# Bumped whenever the build changes, so an old cached build is not used by a newer starchat-tui.
DEMO_VERSION = "tiny-v1"


def demo_model_path(progress: Callable[[str], None] | None = None) -> Path:
    """The demo model's folder, built there first if it is missing."""
    target = cache_dir() / "models" / DEMO_VERSION
    if (target / "config.json").exists():
        return target
    from .tiny import build_tiny_model

    report = progress or (lambda step: None)
    report(f"building the demo model in {target} (first run only)")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename into place, so a crash never leaves a half-written model behind.
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        build_tiny_model(staging, progress=report)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / "config.json").exists():  # not a race another process won
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
