"""What every engine offers a front-end: the in-process :class:`~starchat_tui.engine.engine.Engine`, the
:class:`~starchat_tui.engine.process.EngineProcess` that runs one in a child process, and the
:class:`~starchat_tui.engine.remote.RemoteEngine` of a server all implement :class:`ChatEngine`, so the session
and the front-ends are typed against this and never against one of them.

This module imports neither torch nor transformers: a front-end can name the type without loading a model.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..chat.conversation import Conversation
    from .render import PromptRenderer


@dataclass
class GenerationStats:
    """Numbers about the last reply."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    new_tokens: int = 0
    ttft_s: float = 0.0
    tokens_per_s: float = 0.0
    dropped_turns: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class ChatEngine(Protocol):
    """A loaded model that streams replies to a conversation, turn after turn."""

    model_name: str
    device: str
    dtype: str
    stats: GenerationStats  # of the last reply
    warnings: list[str]  # about the last reply: turns left out of the context, and the like
    # How many stream() calls may run at once, each on its own conversation: 1 for a model in this machine's
    # memory (one KV cache), more for a server that batches requests (evaluation keeps that many in flight).
    concurrent_streams: int

    @property
    def renderer(self) -> PromptRenderer:
        """Renders and counts prompts exactly as the model will see them."""
        ...

    @property
    def context_limit(self) -> int: ...

    def stream(self, conversation: Conversation, **generation_options: Any) -> Generator[str, None, None]:
        """Yield the reply as it is generated, then append it to ``conversation``.

        A reply that was cancelled, or that the consumer stopped reading, is appended with
        ``"interrupted": True``; an error in generation is raised in the consumer and appends nothing.
        """
        ...

    def replies(self, conversation: Conversation, n: int, **generation_options: Any) -> list[str]:
        """``n`` replies to ``conversation``, generated together; ``conversation`` is left as it is.

        For an evaluation's samples of one task: a local model decodes them as one batch, a server as
        concurrent requests. Greedy settings give n equal replies. ``cancel()`` stops them; a KeyboardInterrupt
        while waiting stops them too and is raised again.
        """
        ...

    def cancel(self) -> None:
        """Stop the reply being generated, from any thread."""
        ...

    def close(self) -> None:
        """Free the model (and any process holding it); the engine is unusable afterwards."""
        ...


if TYPE_CHECKING:
    from .engine import Engine
    from .process import EngineProcess
    from .remote import RemoteEngine

    def _every_engine_is_a_chat_engine(
        local: Engine, child: EngineProcess, remote: RemoteEngine
    ) -> tuple[ChatEngine, ChatEngine, ChatEngine]:
        # Never called: the type checker proves here that each implements the protocol in full.
        return local, child, remote
