"""Generation settings: the model card's defaults, validation, and what ``temperature=0`` means."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ..errors import UsageError

# From the starchat-beta model card.
DEFAULTS: dict[str, Any] = {"temperature": 0.2, "top_k": 50, "top_p": 0.95, "max_new_tokens": 1024}

# Passed to generate() by the engine itself; a user setting them would break streaming or the cache.
RESERVED = {"streamer", "past_key_values", "cache", "stopping_criteria", "input_ids", "attention_mask", "use_cache"}


@lru_cache(maxsize=1)
def cache_argument() -> str:
    """The name under which ``generate`` takes a KV cache to continue from.

    transformers 5.25 renamed ``past_key_values`` to ``cache``: the old name prints a FutureWarning on every
    reply (on stderr, where print mode keeps its own messages) and goes in 6.0. Earlier 5.x know only the old one.
    """
    from transformers.generation import utils

    return "cache" if "cache" in getattr(utils, "ALL_CACHE_NAMES", ()) else "past_key_values"


@lru_cache(maxsize=1)
def known_settings() -> frozenset[str]:
    # Importing transformers takes most of a second: the app warms this up while its model loads.
    from transformers import GenerationConfig

    return frozenset(GenerationConfig().to_dict()) - {"transformers_version", "_from_model_config"}


def resolve_generation_options(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults plus ``overrides``, checked, as keyword arguments for ``generate``.

    ``temperature=0`` means greedy decoding, so the sampling knobs are dropped rather than passed
    to a generate() that would warn about them.
    """
    options = {**DEFAULTS, **(overrides or {})}
    unknown = sorted(set(options) - known_settings())
    reserved = sorted(set(options) & RESERVED)
    if reserved:
        raise UsageError(f"{reserved[0]} is managed by starchat-tui and cannot be set")
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, known_settings(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see transformers.GenerationConfig for the names"
        raise UsageError(f"unknown generation setting {key!r}: {hint}")

    max_new = options["max_new_tokens"]
    if not isinstance(max_new, int) or isinstance(max_new, bool) or max_new < 1:
        raise UsageError(f"max_new_tokens must be a whole number >= 1, not {max_new!r}")
    temperature = options.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or temperature < 0:
            raise UsageError(f"temperature must be a number >= 0, not {temperature!r}")
        if temperature == 0:
            for key in ("temperature", "top_k", "top_p"):
                options.pop(key, None)
            options["do_sample"] = False
        else:
            options.setdefault("do_sample", True)
    return options
