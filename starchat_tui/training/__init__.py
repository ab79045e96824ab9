"""Fine-tuning on StarChat dialogues: ``starchat-tui train`` and its Python API.

    from starchat_tui.training import encode_dialogue, train
    ids = encode_dialogue(tokenizer, messages, max_length=2048)
    train("starchat-alpha", ["--num_train_epochs", "1"])

Heavy libraries (torch, transformers, deepspeed) load only when a function that needs them runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["IGNORE_INDEX", "encode_dialogue", "encode_dialogues", "train"]


def __getattr__(name: str) -> Any:
    if name in ("encode_dialogue", "encode_dialogues", "IGNORE_INDEX"):
        from . import encode

        return getattr(encode, name)
    raise AttributeError(f"module 'starchat_tui.training' has no attribute {name!r}")


def train(config: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), *,
          on_progress: Callable[..., None] | None = None) -> Path:
    """Train in this process as ``starchat-tui train CONFIG OVERRIDES...`` would; returns the model folder.

    ``on_progress`` gets each status line and step (a :class:`~.progress.TrainProgress`); to build the
    config from Python values instead, see :meth:`~.config.TrainConfig.build` and :func:`~.trainer.run_training`.
    """
    from .config import parse_invocation
    from .trainer import run_training

    argv = ([str(config)] if config else []) + list(overrides)
    return run_training(parse_invocation(argv).config, on_progress=on_progress)
