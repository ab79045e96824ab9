"""Dialogues without a model: messages, the StarChat template, attachments and context fitting.

Nothing in this package imports torch, transformers or textual.
"""

from .conversation import Conversation
from .template import CHAT_TEMPLATE, SPECIAL_TOKENS, render

__all__ = ["CHAT_TEMPLATE", "SPECIAL_TOKENS", "Conversation", "render"]
