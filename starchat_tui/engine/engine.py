"""The engine: one loaded model that streams replies to a conversation, turn after turn."""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

from ..chat.conversation import Conversation
from ..chat.template import END_TOKEN, SYSTEM_TOKEN, USER_TOKEN
from ..errors import UsageError
from .cache import PrefixCache, common_prefix_length
from .generation import cache_argument, resolve_generation_options
from .loading import (
    Progress,
    choose_device,
    choose_dtype,
    compile_decoding,
    load_config,
    load_model,
    load_tokenizer,
    quiet_transformers,
    resolve_source,
    set_cpu_threads,
)
from .protocol import GenerationStats
from .render import PromptRenderer, context_limit_of

# Special tokens that end a turn in common chat formats; only those the tokenizer has as added tokens count.
# A StarChat model that writes <|user|> or <|system|> has started inventing the next turn: stop there too.
END_OF_TURN_TOKENS = (END_TOKEN, USER_TOKEN, SYSTEM_TOKEN, "<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|endoftext|>")


# Generation threads still running, with the event that cancels each. A caller that stops reading a stream
# without closing it (Ctrl+C in a script) would leave one inside torch while Python shuts down, and the C++
# runtime aborts the process ("terminate called without an active exception"). So they are stopped first.
_RUNNING: dict[threading.Thread, threading.Event] = {}


@atexit.register
def _stop_running_generation() -> None:
    for worker, cancel in list(_RUNNING.items()):
        cancel.set()
        worker.join(timeout=30)


class Engine:
    """A model, its tokenizer and the KV cache of the conversation it last answered."""

    def __init__(self, model: Any, tokenizer: Any, *, model_name: str, context_limit: int | None = None,
                 compile: bool = False, quantize: str | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.renderer = PromptRenderer(tokenizer, context_limit or context_limit_of(model.config, tokenizer))
        self.device = str(model.device)
        self.dtype = str(model.dtype).removeprefix("torch.")
        if quantize:
            # model.dtype is what the unquantised parts run in; the status line should say the weights are int8.
            self.dtype = f"{quantize}+{self.dtype}"
        self.stats = GenerationStats()
        self.warnings: list[str] = []
        self.concurrent_streams = 1  # one KV cache, one reply at a time
        self.compiled = compile
        if compile:
            compile_decoding(model)
        # A compiled step is built for one cache shape: the whole context, allocated once.
        self._cache = PrefixCache(model, static_length=self.context_limit if compile else None)
        self._cancel = threading.Event()
        self._busy = threading.Lock()
        self._stop_ids, self._stop_strings = self._stopping_rules()

    @property
    def context_limit(self) -> int:
        return self.renderer.context_limit

    def _stopping_rules(self) -> tuple[list[int], list[str]]:
        added = self.tokenizer.get_added_vocab()
        stop_ids = {added[token] for token in END_OF_TURN_TOKENS if token in added}
        # Released StarChat configs carry eos 0; the tokenizer's <|end|> is what ends a turn.
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        stop_ids.update([configured] if isinstance(configured, int) else configured or [])
        if self.tokenizer.eos_token_id is not None:
            stop_ids.add(self.tokenizer.eos_token_id)
        # A base model under the StarChat template has no <|end|> token: stop on the text instead.
        needs_text_stop = not self.renderer.uses_own_template and END_TOKEN not in added
        return sorted(stop_ids), [END_TOKEN] if needs_text_stop else []

    def cancel(self) -> None:
        """Stop the reply being generated, from any thread; it ends after the current decode step."""
        self._cancel.set()

    def reset_cache(self) -> None:
        self._cache.reset()

    def close(self) -> None:
        """Stop any reply and let the model's memory go with this object."""
        self.cancel()
        self._cache.reset()

    def stream(self, conversation: Conversation, **generation_options: Any) -> Generator[str, None, None]:
        """Yield the reply to ``conversation`` as it is generated, then append it to the conversation.

        The reply is appended when the stream ends, with ``"interrupted": True`` when it was cancelled
        or the consumer stopped reading. An error in generation is raised here, in the consumer.
        """
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("this engine is already generating; cancel() it or wait for the reply")
        try:
            yield from self._stream(conversation, generation_options)
        finally:
            self._busy.release()

    def _stream(self, conversation: Conversation, overrides: dict[str, Any]) -> Iterator[str]:
        import torch

        from .lookup import OPTION as LOOKUP_OPTION
        from .lookup import lookup_tokens
        from .streaming import CancelCriterion, ChunkStreamer

        options = resolve_generation_options(overrides)
        max_new_tokens = options.pop("max_new_tokens")
        self._cancel.clear()
        self.warnings = []
        started = time.perf_counter()

        fitted = self.renderer.fit(conversation.for_model(), max_new_tokens)
        if fitted.dropped:
            self.warnings.append(
                f"dropped the {fitted.dropped_turns} oldest turn(s) ({len(fitted.dropped)} messages) from what the "
                f"model sees, to fit its {self.context_limit}-token context; they stay in the conversation"
            )
        prompt_ids = self.renderer.encode(self.renderer.render_prompt(fitted.messages))
        max_new_tokens = min(max_new_tokens, self.context_limit - len(prompt_ids))
        draft = lookup_tokens(fitted.messages, options)
        if self.compiled:
            # Prompt lookup feeds drafts of varying length and crops the cache at each step: the compiled step
            # and its static cache take neither.
            draft = 0
        if draft:
            options[LOOKUP_OPTION] = draft
            # Lookup drafts only from the tokens it is fed, so the question (where the code to copy is) is fed
            # again even when the cache holds it, as it does when a reply is regenerated.
            cache, cached = self._cache.prepare(prompt_ids, keep_at_most=self._question_start(fitted.messages, prompt_ids))
        else:
            cache, cached = self._cache.prepare(prompt_ids)

        streamer = ChunkStreamer(self.tokenizer, self._stop_ids)
        if self._stop_strings:
            options.update(stop_strings=self._stop_strings, tokenizer=self.tokenizer)
        device = self.model.device
        # With a reused cache, transformers 5's prompt lookup feeds the whole of input_ids through the model in
        # its first step, cached tokens included, so the cache ends up holding them twice. Given only the
        # uncached tokens, and an attention mask over the whole prompt, it feeds what plain decoding feeds.
        fed = prompt_ids[cached:] if draft else prompt_ids
        inputs = torch.tensor([fed], device=device)
        mask = torch.ones((1, len(prompt_ids)), dtype=torch.long, device=device)
        outcome: dict[str, Any] = {}
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self._stop_ids[0]

        def work() -> None:
            try:
                with torch.inference_mode():
                    output = self.model.generate(
                        input_ids=inputs,
                        attention_mask=mask,
                        **{cache_argument(): cache},
                        streamer=streamer,
                        stopping_criteria=[CancelCriterion(self._cancel)],
                        max_new_tokens=max_new_tokens,
                        eos_token_id=self._stop_ids,
                        pad_token_id=pad_id,
                        **options,
                    )
                outcome["ids"] = prompt_ids[: len(prompt_ids) - len(fed)] + output[0].tolist()
            except BaseException as error:  # the consumer re-raises it; nothing may hang
                streamer.fail(error)
            finally:
                streamer.end()

        worker = threading.Thread(target=work, name="starchat-generate", daemon=True)
        _RUNNING[worker] = self._cancel
        worker.start()
        pieces: list[str] = []
        finished = False
        try:
            for chunk in streamer:
                pieces.append(chunk)
                yield chunk
            finished = True
        finally:
            if not finished:  # the consumer stopped reading, or generation failed
                self._cancel.set()
            worker.join()
            _RUNNING.pop(worker, None)
            if "ids" not in outcome:
                # A failed generate may have left the cache half-written; the error reaches the consumer.
                self._cache.reset()
            else:
                self._cache.commit(outcome["ids"])
                reply = "".join(pieces)
                if self._stop_strings:
                    reply = reply.removesuffix(END_TOKEN)
                extra = {"interrupted": True} if self._cancel.is_set() else {}
                conversation.add("assistant", reply, **extra)
                new_tokens = len(outcome["ids"]) - len(prompt_ids)
                self._record_stats(started, streamer, len(prompt_ids), cached, new_tokens, fitted.dropped_turns)

    def replies(self, conversation: Conversation, n: int, **generation_options: Any) -> list[str]:
        """``n`` replies to ``conversation`` from one batched ``generate``; the conversation is left as it is.

        For the samples of an evaluation task: n sequential streams would pass over the weights n times per
        token. Greedy settings give n copies of one reply. The conversation's KV cache is neither used nor
        changed. ``cancel()`` stops all n after the current step; Ctrl-C (KeyboardInterrupt) does too, and
        is raised again.
        """
        if n < 1:
            raise UsageError(f"the number of replies must be at least 1, not {n}")
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("this engine is already generating; cancel() it or wait for the reply")
        try:
            return self._replies(conversation, n, generation_options)
        finally:
            self._busy.release()

    def _replies(self, conversation: Conversation, n: int, overrides: dict[str, Any]) -> list[str]:
        import torch

        from .lookup import OPTION as LOOKUP_OPTION
        from .streaming import CancelCriterion

        options = resolve_generation_options(overrides)
        options.pop(LOOKUP_OPTION, None)  # transformers drafts for one sequence at a time only
        max_new_tokens = options.pop("max_new_tokens")
        self._cancel.clear()
        self.warnings = []
        started = time.perf_counter()
        fitted = self.renderer.fit(conversation.for_model(), max_new_tokens)
        prompt_ids = self.renderer.encode(self.renderer.render_prompt(fitted.messages))
        max_new_tokens = min(max_new_tokens, self.context_limit - len(prompt_ids))
        sampled = bool(options.get("do_sample"))
        if self._stop_strings:
            options.update(stop_strings=self._stop_strings, tokenizer=self.tokenizer)
        inputs = torch.tensor([prompt_ids], device=self.model.device)
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                with torch.inference_mode():
                    outcome["ids"] = self.model.generate(
                        input_ids=inputs,
                        attention_mask=torch.ones_like(inputs),
                        stopping_criteria=[CancelCriterion(self._cancel)],
                        max_new_tokens=max_new_tokens,
                        eos_token_id=self._stop_ids,
                        # Finished sequences are padded with a stop token, so each reply ends at its first one.
                        pad_token_id=self._stop_ids[0],
                        num_return_sequences=n if sampled else 1,
                        **options,
                    )[:, len(prompt_ids):].tolist()
            except BaseException as error:  # raised again in the caller
                outcome["error"] = error
            finally:
                done.set()

        worker = threading.Thread(target=work, name="starchat-generate", daemon=True)
        _RUNNING[worker] = self._cancel
        worker.start()
        try:
            # Waiting on an event with a timeout, not on join(), lets Ctrl-C through between waits.
            while not done.wait(0.1):
                pass
        except BaseException:
            self._cancel.set()
            raise
        finally:
            worker.join()  # at once when done; else within a step, as the cancel is set
            _RUNNING.pop(worker, None)
        if "error" in outcome:
            raise outcome["error"]
        texts = [self._reply_text(ids) for ids in outcome["ids"]]
        new_tokens = sum(len(self._until_stop(ids)) for ids in outcome["ids"])
        self.stats = GenerationStats(len(prompt_ids), 0, new_tokens, 0.0,
                                     new_tokens / max(time.perf_counter() - started, 1e-9), fitted.dropped_turns)
        return texts if sampled else texts * n

    def _until_stop(self, ids: list[int]) -> list[int]:
        """A reply's ids up to and with its first stop token."""
        stops = set(self._stop_ids)
        end = next((index for index, token in enumerate(ids) if token in stops), None)
        return ids if end is None else ids[: end + 1]

    def _reply_text(self, ids: list[int]) -> str:
        """The text a stream of these ids would have given: stop tokens left out, other special tokens kept."""
        kept = [token for token in self._until_stop(ids) if token not in set(self._stop_ids)]
        text = str(self.tokenizer.decode(kept, skip_special_tokens=False))
        return text.split(END_TOKEN)[0] if self._stop_strings else text

    def _question_start(self, messages: Sequence[Mapping[str, Any]], prompt_ids: list[int]) -> int:
        """How many of ``prompt_ids`` come before the last message (the question)."""
        if len(messages) < 2:
            return 0
        before = self.renderer.encode(self.renderer.render_prompt(messages[:-1], add_generation_prompt=False))
        return common_prefix_length(before, prompt_ids)

    def _record_stats(self, started: float, streamer: Any, prompt: int, cached: int, new: int, dropped: int) -> None:
        first, last = streamer.first_token_at, streamer.last_token_at
        ttft = (first - started) if first else 0.0
        # The tokens of the first hand-over (one, or a whole accepted lookup draft) came with the prefill:
        # the decode rate counts only those that came after it, over the time after it.
        if first and last and new > streamer.first_tokens and last > first:
            rate = (new - streamer.first_tokens) / (last - first)
        else:
            rate = new / max(time.perf_counter() - started, 1e-9)
        self.stats = GenerationStats(prompt, cached, new, ttft, rate, dropped)


def load_engine(
    model: str,
    *,
    device: str | None = "auto",
    dtype: str | None = "auto",
    quantize: str | None = None,
    trust_remote_code: bool = False,
    compile: bool = False,
    progress: Progress | None = None,
    name: str | None = None,
) -> Engine:
    """Load a model by Hub id or local folder into an Engine.

    ``name`` is what the user called the model, shown in progress and kept as ``engine.model_name``
    (default: ``model``); "demo" is resolved to its folder before this, by :func:`starchat_tui.demo.resolve_model`.
    ``compile`` keeps a static KV cache and runs the decode steps through torch.compile.
    """
    if compile not in (True, False):  # 1 and 0 pass: STARCHAT_TUI_COMPILE=1 reads as the number
        raise UsageError(f"compile = {compile!r} (the compile config key or STARCHAT_TUI_COMPILE): use true or false")
    compile = bool(compile)
    report = progress or (lambda step: None)
    started = time.perf_counter()
    shown = name or model
    report(f"{shown}: loading libraries")
    chosen_device = choose_device(device)
    set_cpu_threads(chosen_device)
    quiet_transformers(chosen_device)
    source = resolve_source(model)
    chosen_dtype = choose_dtype(chosen_device, dtype, quantize)
    report(f"{shown}: loading the tokenizer")
    tokenizer = load_tokenizer(source, trust_remote_code)
    config = load_config(source, trust_remote_code)
    dtype_name = str(chosen_dtype).removeprefix("torch.")
    report(f"{shown}: loading weights ({chosen_device}, {dtype_name}{', ' + quantize if quantize else ''})")
    loaded = load_model(source, chosen_device, chosen_dtype, quantize, trust_remote_code)
    quantizer = getattr(loaded, "hf_quantizer", None)
    if compile and quantizer is not None and not quantizer.is_compileable:
        # generate would quietly decode uncompiled: say so instead.
        raise UsageError(f"--compile does not work with --quantize {quantize} (transformers cannot compile it); drop one of them")
    engine = Engine(loaded, tokenizer, model_name=shown, context_limit=context_limit_of(config, tokenizer), compile=compile,
                    quantize=quantize)
    report(f"{shown}: ready in {time.perf_counter() - started:.1f} s ({engine.device}, {engine.dtype})")
    return engine
