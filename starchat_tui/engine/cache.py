"""Reusing the KV cache between turns, so each turn prefills only its new tokens.

``generate`` never checks that a cache it is handed still matches the prompt: a stale cache silently
changes the answer. So the cache remembers the token ids it holds, and before every turn it is cropped
back to the longest prefix it shares with the new prompt: an edited or regenerated turn crops, a plain
next turn keeps everything.

A compiled decode step needs a cache whose tensors keep their shape and address from step to step: with
``static_length`` the one cache is a StaticCache of that many positions, allocated once and cropped the same
way (cropping only moves its fill mark back; the next turn overwrites what lies past it).
"""

from __future__ import annotations

from typing import Any


def common_prefix_length(a: list[int], b: list[int]) -> int:
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


class PrefixCache:
    """One conversation's KV cache and the token ids it covers."""

    def __init__(self, model: Any, static_length: int | None = None) -> None:
        self._model = model
        self._static_length = static_length
        self._cache: Any = None
        self._ids: list[int] = []

    @property
    def cached_ids(self) -> list[int]:
        return self._ids

    def reset(self) -> None:
        if self._static_length and self._cache is not None:
            import torch

            # Keep the tensors the compiled step was built against: new ones would cost a recompile. They were
            # made under inference mode, and only there may they be written to.
            with torch.inference_mode():
                self._cache.reset()
        else:
            self._cache = None
        self._ids = []

    def _new_cache(self) -> Any:
        from transformers import DynamicCache, StaticCache

        if self._static_length:
            return StaticCache(config=self._model.config, max_cache_len=self._static_length)
        return DynamicCache(config=self._model.config)

    def _held(self) -> int:
        # A StaticCache counts its tokens in a tensor, so that a compiled step reads it without recompiling.
        return int(self._cache.get_seq_length())

    def prepare(self, prompt_ids: list[int], keep_at_most: int | None = None) -> tuple[Any, int]:
        """The cache to pass to ``generate`` for ``prompt_ids`` and how many of them it already holds.

        At least one prompt token is always left uncached: ``generate`` needs a token to feed. ``keep_at_most``
        crops the cache further, so that the tokens from there on are fed again: prompt lookup drafts only from
        the tokens it is fed (see :mod:`.lookup`).
        """
        keep = min(common_prefix_length(self._ids, prompt_ids), len(prompt_ids) - 1)
        if keep_at_most is not None:
            keep = min(keep, keep_at_most)
        if self._cache is None or keep <= 0 or self._held() != len(self._ids):
            self.reset()
            if self._cache is None:
                self._cache = self._new_cache()
            return self._cache, 0
        surplus = len(self._ids) - keep
        if surplus > 0:
            # transformers 5 takes a negative count of tokens to remove from the end.
            self._cache.crop(-surplus)
            self._ids = self._ids[:keep]
        return self._cache, keep

    def commit(self, sequence_ids: list[int]) -> None:
        """Record what the cache holds after ``generate`` produced ``sequence_ids`` (prompt + reply).

        The last sampled token is never fed back through the model, so the cache ends one short.
        """
        if self._cache is None:
            return
        held = self._held()
        if held > len(sequence_ids):
            self.reset()
            return
        self._ids = list(sequence_ids[:held])
