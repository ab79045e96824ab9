"""Which server a ``-m`` value names: a URL, or an endpoint from ``config.toml``.

``-m http://HOST:PORT/v1`` uses the one model the server lists; ``-m http://HOST:PORT/v1#MODEL`` names one
(the part after ``#`` is never sent to the server as part of the URL). A named endpoint is a table::

    [endpoints.gpu]
    url = "http://gpu-box:8000/v1"
    model = "HuggingFaceH4/starchat-beta"   # optional when the server lists one model
    api_key_env = "GPU_BOX_KEY"             # the variable holding the key; the key itself is never written down
    api = "auto"                            # auto, chat or completions
    context = 8192                          # optional: when the server does not report its context size
    tokenizer = "HuggingFaceH4/starchat-beta"  # optional: a local folder or cached Hub id to count tokens with

and ``-m gpu`` (or ``-m gpu#OTHER-MODEL``) selects it. This module only reads settings; it opens no connection.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import UsageError

API_MODES = ("auto", "chat", "completions")
# URLs without a key get it from here, never from OPENAI_API_KEY: that key would go to whatever host -m names.
DEFAULT_KEY_VARIABLE = "STARCHAT_TUI_API_KEY"
ENDPOINT_KEYS = {"url", "model", "api_key_env", "api", "context", "tokenizer", "timeout"}


@dataclass(frozen=True)
class RemoteTarget:
    """An OpenAI-compatible server and how to talk to it."""

    url: str  # the API base, ending in /v1 for most servers
    model: str | None  # None: the one model the server lists
    api: str = "auto"
    key_variable: str = DEFAULT_KEY_VARIABLE
    context: int | None = None
    tokenizer: str | None = None
    timeout: float = 120.0  # seconds to wait for the next token before giving up on the server
    name: str | None = None  # the endpoint's name in config.toml

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.key_variable) or None

    @property
    def shown(self) -> str:
        """What the user called it, for messages and the session's model field: never the key."""
        base = self.name or self.url
        return f"{base}#{self.model}" if self.model else base


def is_url(name: str) -> bool:
    return name.startswith(("http://", "https://"))


def remote_target(name: str, endpoints: Mapping[str, Any] | None = None, api: str | None = None) -> RemoteTarget | None:
    """The server ``name`` names, or None when it names a local model (a folder, a Hub id, "demo")."""
    base, _, model = name.partition("#")
    endpoints = endpoints or {}
    if is_url(base):
        target = RemoteTarget(url=_checked_url(base, name), model=model or None)
    elif base in endpoints:
        target = _from_table(base, endpoints[base])
        if model:
            target = RemoteTarget(**{**target.__dict__, "model": model})
    else:
        return None
    if api is not None and api != "auto":
        _check_api(api, "--api")
        target = RemoteTarget(**{**target.__dict__, "api": api})
    return target


def _checked_url(url: str, given: str) -> str:
    parts = urlsplit(url)
    if not parts.hostname:
        raise UsageError(f"-m {given}: not a server URL; use -m http://HOST:PORT/v1 (or https://)")
    return url.rstrip("/")


def _check_api(api: object, where: str) -> str:
    if api not in API_MODES:
        raise UsageError(f"{where} {api!r}: use one of {', '.join(API_MODES)}")
    return str(api)


def _from_table(name: str, table: Any) -> RemoteTarget:
    where = f"config.toml [endpoints.{name}]"
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a table with at least url = \"http://HOST:PORT/v1\"")
    if "api_key" in table:
        raise UsageError(f"{where}: put the key in an environment variable and name it with api_key_env, not in the file")
    unknown = sorted(set(table) - ENDPOINT_KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}; the keys are {', '.join(sorted(ENDPOINT_KEYS))}")
    url = table.get("url")
    if not isinstance(url, str) or not is_url(url):
        raise UsageError(f"{where}: url must be an http:// or https:// address, such as \"http://HOST:PORT/v1\"")
    context = table.get("context")
    if context is not None and (not isinstance(context, int) or isinstance(context, bool) or context < 16):
        raise UsageError(f"{where}: context must be the server's context size in tokens, such as 8192")
    timeout = table.get("timeout", 120.0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise UsageError(f"{where}: timeout must be a number of seconds > 0")
    return RemoteTarget(
        url=_checked_url(url, url),
        model=table.get("model") or None,
        api=_check_api(table.get("api", "auto"), f"{where} api ="),
        key_variable=str(table.get("api_key_env") or DEFAULT_KEY_VARIABLE),
        context=context,
        tokenizer=table.get("tokenizer") or None,
        timeout=float(timeout),
        name=name,
    )
