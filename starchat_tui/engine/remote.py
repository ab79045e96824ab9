"""A model served elsewhere, over the OpenAI-compatible HTTP API that vLLM, TGI, llama.cpp, Ollama and
``transformers serve`` all speak.

Two ways to ask it:

- **chat** (``/v1/chat/completions``): the server renders the conversation with the model's own template;
- **completions** (``/v1/completions``): we render the prompt ourselves, through the same renderer as local
  models, so a StarChat model gets the StarChat format byte for byte and stops at ``<|end|>``. StarChat alpha and
  beta ship no chat template, so a server cannot render them: ``auto`` picks this mode for them.

Replies stream over server-sent events into the same stream-and-save loop as local engines. A worker thread
reads the socket; the consumer only waits on a queue, so a cancel returns at once and the socket is closed
behind it.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..chat.conversation import Conversation
from ..chat.template import END_TOKEN, SYSTEM_TOKEN, USER_TOKEN
from ..errors import ModelLoadError, StarchatError, UsageError
from .endpoints import RemoteTarget
from .lookup import OPTION as LOOKUP_OPTION
from .protocol import GenerationStats
from .render import CONTEXT_KEYS, PromptRenderer

CONNECT_TIMEOUT_S = 5.0
# Said when neither the server nor the endpoint's config tells the context size.
ASSUMED_CONTEXT = 4096
# Streams a server may have from us at once; vLLM and TGI batch them, llama.cpp queues what its slots cannot take.
CONCURRENT_STREAMS = 64
# Generation settings a server takes, by our name; the value is the request field.
REQUEST_FIELDS = {
    "max_new_tokens": "max_tokens", "temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "seed": "seed",
    "repetition_penalty": "repetition_penalty", "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty", "min_p": "min_p", "stop": "stop",
}
STARCHAT_STOPS = [END_TOKEN, USER_TOKEN, SYSTEM_TOKEN]


class RemoteError(StarchatError):
    """The server failed: unreachable, refused, or it broke off an answer."""

    exit_code = ModelLoadError.exit_code


# -- counting tokens without the model ----------------------------------------------------------------------


class ByteCounter:
    """A stand-in tokenizer that counts UTF-8 bytes: byte-level BPE never makes more tokens than bytes, so
    a history fitted by this count never overflows the context, at the price of keeping less of it."""

    chat_template = None
    exact = False

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": list(text.encode())}

    def decode(self, ids: list[int]) -> str:
        return bytes(ids).decode(errors="ignore")


class ServerTokenizer:
    """The server's own tokenizer, through the ``/tokenize`` and ``/detokenize`` routes of vLLM and llama.cpp."""

    chat_template = None
    exact = True

    def __init__(self, client: Any, root: str, model: str, style: str) -> None:
        self._client, self._root, self._model, self._style = client, root, model, style

    @classmethod
    def probe(cls, client: Any, root: str, model: str) -> ServerTokenizer | None:
        for style in ("vllm", "llama.cpp"):
            tokenizer = cls(client, root, model, style)
            try:
                if tokenizer("hello")["input_ids"]:
                    return tokenizer
            except Exception:  # no such route, or another shape: try the next, then count bytes
                continue
        return None

    def _post(self, route: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self._client.post(f"{self._root}/{route}", json=body, timeout=CONNECT_TIMEOUT_S)
        response.raise_for_status()
        return response.json()

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        if self._style == "vllm":
            body = {"model": self._model, "prompt": text, "add_special_tokens": add_special_tokens}
        else:
            body = {"content": text, "add_special": add_special_tokens}
        tokens = self._post("tokenize", body)["tokens"]
        if not isinstance(tokens, list):
            raise ValueError("no token list")
        return {"input_ids": [int(token) for token in tokens]}

    def decode(self, ids: list[int]) -> str:
        body: dict[str, Any] = {"tokens": ids}
        if self._style == "vllm":
            body["model"] = self._model
        answer = self._post("detokenize", body)
        return str(answer.get("prompt", answer.get("content", "")))


def local_tokenizer(name: str | None) -> Any:
    """The model's tokenizer when it is on this machine (a folder or the Hugging Face cache), without asking the Hub."""
    if not name:
        return None
    from .loading import is_in_hub_cache, quiet_transformers

    folder = Path(name).expanduser()
    if not folder.is_dir() and (name.count("/") != 1 or not is_in_hub_cache(name)):
        return None
    quiet_transformers()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder) if folder.is_dir() else name, local_files_only=True)
    except (OSError, ValueError):
        return None


def local_context(name: str | None) -> int | None:
    if not name or not Path(name).expanduser().is_dir():
        return None
    try:
        config = json.loads((Path(name).expanduser() / "config.json").read_text())
    except (OSError, ValueError):
        return None
    for key in CONTEXT_KEYS:
        if isinstance(config.get(key), int) and config[key] > 0:
            return int(config[key])
    return None


# -- the engine ---------------------------------------------------------------------------------------------


class RemoteEngine:
    """An OpenAI-compatible server, behind the same interface as a local model."""

    def __init__(self, target: RemoteTarget, client: Any, model: str, api: str, renderer: PromptRenderer,
                 notes: list[str] | None = None) -> None:
        self.target = target
        self.model = model  # the id the server knows it by
        self.api = api
        self.model_name = f"{target.name or target.url}#{model}"
        self.device = urlsplit(target.url).netloc
        self.dtype = f"{api} API"
        self.stats = GenerationStats()
        self.warnings: list[str] = []
        self.notes = notes or []  # said once, when connected: how the context is counted, and the like
        self.concurrent_streams = CONCURRENT_STREAMS
        self._client = client
        self._renderer = renderer
        self._cancels: set[threading.Event] = set()
        self._lock = threading.Lock()

    @property
    def renderer(self) -> PromptRenderer:
        return self._renderer

    @property
    def context_limit(self) -> int:
        return self._renderer.context_limit

    @property
    def counts_exactly(self) -> bool:
        return getattr(self._renderer.tokenizer, "exact", True)

    def cancel(self) -> None:
        with self._lock:
            for cancel in self._cancels:
                cancel.set()

    def close(self) -> None:
        self.cancel()
        self._client.close()

    # -- the request --------------------------------------------------------------------------------------

    def request(self, conversation: Conversation, **options: Any) -> dict[str, Any]:
        """The exact request a reply to ``conversation`` sends: method, URL and JSON body (no key in it)."""
        body, _ = self._request_body(conversation, options)
        return {"method": "POST", "url": self._url, "json": body}

    @property
    def _url(self) -> str:
        return self.target.url + ("/completions" if self.api == "completions" else "/chat/completions")

    def _request_body(self, conversation: Conversation, options: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
        fields = request_fields(options)
        max_new = int(fields.get("max_tokens", 1024))
        fitted = self._renderer.fit(conversation.messages, max_new)
        warnings = []
        if fitted.dropped:
            warnings.append(
                f"dropped the {fitted.dropped_turns} oldest turn(s) ({len(fitted.dropped)} messages) from what the "
                f"model sees, to fit its {self.context_limit}-token context; they stay in the conversation"
            )
        self.warnings = warnings
        plain = [{"role": m["role"], "content": m["content"]} for m in fitted.messages]
        prompt = self._renderer.render_prompt(plain)
        if self.counts_exactly:
            fields["max_tokens"] = max(1, min(max_new, self.context_limit - self._renderer.count_tokens(prompt)))
        body: dict[str, Any] = {"model": self.model}
        if self.api == "completions":
            body["prompt"] = prompt
            if not self._renderer.uses_own_template:
                fields["stop"] = [*STARCHAT_STOPS, *as_list(fields.get("stop"))]
        else:
            body["messages"] = plain
        body.update(fields)
        body.update(stream=True, stream_options={"include_usage": True})
        return body, fitted.dropped_turns

    # -- streaming ----------------------------------------------------------------------------------------

    def stream(self, conversation: Conversation, **generation_options: Any) -> Generator[str, None, None]:
        """Yield the reply as the server sends it, then append it to ``conversation`` (see ChatEngine)."""
        body, dropped = self._request_body(conversation, generation_options)
        request = {"url": self._url, "json": body}
        cancel = threading.Event()
        with self._lock:
            self._cancels.add(cancel)
        try:
            yield from self._stream(conversation, request, cancel, dropped)
        finally:
            with self._lock:
                self._cancels.discard(cancel)

    def replies(self, conversation: Conversation, n: int, **generation_options: Any) -> list[str]:
        """``n`` replies as concurrent requests (up to ``concurrent_streams``), for the server to batch; greedy
        settings send one request. ``conversation`` is left as it is (see ChatEngine)."""
        from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

        if n < 1:
            raise UsageError(f"the number of replies must be at least 1, not {n}")
        greedy = request_fields(generation_options).get("temperature") == 0

        def one() -> str:
            copy = conversation.copy()
            for _ in self.stream(copy, **generation_options):
                pass
            return str(copy.messages[-1]["content"])

        asked = 1 if greedy else n
        pool = ThreadPoolExecutor(max_workers=min(asked, self.concurrent_streams), thread_name_prefix="starchat-replies")
        futures = [pool.submit(one) for _ in range(asked)]
        try:
            # Short waits, not one long one, so that Ctrl-C gets through.
            while True:
                done, waiting = wait(futures, timeout=0.1, return_when=FIRST_EXCEPTION)
                failed = next((future for future in done if future.exception() is not None), None)
                if failed is not None:
                    failed.result()  # raises what the request raised
                if not waiting:
                    break
            texts = [future.result() for future in futures]
        except BaseException:
            self.cancel()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return texts * n if greedy else texts

    def _stream(self, conversation: Conversation, request: dict[str, Any], cancel: threading.Event,
                dropped: int) -> Iterator[str]:
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        held: dict[str, Any] = {}
        started = time.perf_counter()
        worker = threading.Thread(target=self._read, args=(request, events, held, cancel), daemon=True,
                                  name="starchat-remote")
        worker.start()
        pieces: list[str] = []
        usage: dict[str, Any] = {}
        first = last = 0.0
        finished = failed = False
        try:
            while True:
                try:
                    kind, item = events.get(timeout=0.05)
                except queue.Empty:
                    if cancel.is_set():
                        break
                    continue
                if kind == "text":
                    last = time.perf_counter()
                    first = first or last
                    pieces.append(item)
                    yield item
                elif kind == "usage":
                    usage = item
                elif kind == "error":
                    failed = True
                    raise item
                else:
                    finished = not cancel.is_set()
                    break
        finally:
            if not finished:
                cancel.set()
                response = held.get("response")
                if response is not None:
                    # Closing the socket under the reading thread ends it; its error goes nowhere.
                    threading.Thread(target=_close_quietly, args=(response,), daemon=True).start()
            if not failed:  # a failure appends nothing: the session keeps what streamed (see ChatEngine)
                self._finish(conversation, pieces, usage, finished, (started, first, last), dropped)

    def _finish(self, conversation: Conversation, pieces: list[str], usage: dict[str, Any], finished: bool,
                times: tuple[float, float, float], dropped: int) -> None:
        """Append the reply (marked interrupted unless it ended by itself) and record its numbers."""
        started, first, last = times
        reply = "".join(pieces)
        if self.api == "completions" and not self._renderer.uses_own_template:
            reply = reply.removesuffix(END_TOKEN)
        conversation.add("assistant", reply, **({} if finished else {"interrupted": True}))
        new_tokens = int(usage.get("completion_tokens") or len(pieces))
        ended = time.perf_counter()
        if new_tokens > 1 and last - first >= 0.05:
            rate = (new_tokens - 1) / (last - first)
        else:  # the server sent the answer in one burst: only the whole request's time means anything
            rate = new_tokens / max(ended - started, 1e-9)
        self.stats = GenerationStats(
            prompt_tokens=int(usage.get("prompt_tokens") or 0), new_tokens=new_tokens,
            ttft_s=(first - started) if first else 0.0, tokens_per_s=rate, dropped_turns=dropped,
        )

    def _read(self, request: dict[str, Any], events: queue.Queue[tuple[str, Any]], held: dict[str, Any],
              cancel: threading.Event) -> None:
        import httpx
        from httpx_sse import EventSource

        try:
            with self._client.stream("POST", request["url"], json=request["json"]) as response:
                held["response"] = response
                if cancel.is_set():
                    return
                if response.status_code >= 400:
                    response.read()
                    raise http_failure(self.target, response, what="the request")
                for event in EventSource(response).iter_sse():
                    if cancel.is_set():
                        return
                    if event.data.strip() == "[DONE]":
                        break
                    for kind, item in parse_frame(event.data, self.api):
                        events.put((kind, item))
            events.put(("end", None))
        except StarchatError as error:
            events.put(("error", error))
        except httpx.TimeoutException:
            events.put(("error", RemoteError(
                f"{self.target.url} sent nothing for {self.target.timeout:.0f} s; the answer so far is kept "
                "(a slower server needs timeout = SECONDS in its [endpoints] table)")))
        except (httpx.HTTPError, OSError) as error:
            if not cancel.is_set():
                events.put(("error", RemoteError(
                    f"the server at {self.target.url} broke off the answer ({describe(error)}); the answer so far is kept")))
        except Exception as error:  # a bug of ours: the consumer raises it, with its traceback under --debug
            events.put(("error", error))


def _close_quietly(response: Any) -> None:
    try:
        response.close()
    except Exception:  # the connection is going away either way
        pass


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(item) for item in value]


def request_fields(options: Mapping[str, Any]) -> dict[str, Any]:
    """Our generation settings as request fields; a setting no server takes is a one-line error."""
    fields: dict[str, Any] = {}
    for key, value in options.items():
        if key == LOOKUP_OPTION:  # how a local model decodes; a server decides that for itself
            continue
        if key == "do_sample":
            if not value:
                fields["temperature"] = 0  # greedy
            continue
        if key not in REQUEST_FIELDS:
            raise UsageError(f"{key} cannot be sent to an OpenAI-compatible server; it takes "
                             f"{', '.join(sorted(REQUEST_FIELDS))}")
        fields[REQUEST_FIELDS[key]] = value
    if fields.get("temperature") == 0:
        for key in ("top_p", "top_k"):
            fields.pop(key, None)
    return fields


def parse_frame(data: str, api: str) -> list[tuple[str, Any]]:
    """What one server-sent event carries: text, usage, or the server's own error."""
    try:
        frame = json.loads(data)
    except ValueError:
        raise RemoteError(f"the server sent a malformed event ({data[:80]!r}); the answer so far is kept") from None
    if not isinstance(frame, dict):
        raise RemoteError(f"the server sent a malformed event ({data[:80]!r}); the answer so far is kept")
    if frame.get("error"):
        error = frame["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise RemoteError(f"the server stopped the answer: {str(message).splitlines()[0][:200]}")
    out: list[tuple[str, Any]] = []
    for choice in frame.get("choices") or []:
        text = choice.get("text") if api == "completions" else (choice.get("delta") or {}).get("content")
        if text:
            out.append(("text", text))
    if isinstance(frame.get("usage"), dict):
        out.append(("usage", frame["usage"]))
    return out


def describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text[:160]}" if text else type(error).__name__


def http_failure(target: RemoteTarget, response: Any, *, what: str) -> RemoteError:
    """One line for an HTTP error answer: whose key, which model, or what the server said."""
    status = response.status_code
    try:
        body = response.json()
        detail = body.get("error", body.get("detail", body.get("message", "")))
        if isinstance(detail, dict):
            detail = detail.get("message", "")
    except (ValueError, AttributeError):
        detail = response.text
    detail = str(detail).strip().splitlines()[0][:200] if str(detail).strip() else ""
    if status in (401, 403):
        if target.api_key:
            return RemoteError(f"{target.url} refused the API key in ${target.key_variable} (HTTP {status}); "
                               "check the key, or name another variable with api_key_env")
        return RemoteError(f"{target.url} needs an API key (HTTP {status}): put it in ${target.key_variable}, or name "
                           "the variable holding it with api_key_env in the endpoint's [endpoints] table")
    said = f": {detail}" if detail else ""
    return RemoteError(f"{target.url} answered {what} with HTTP {status}{said}")


# -- connecting ---------------------------------------------------------------------------------------------


def connect(target: RemoteTarget, progress: Any = None) -> RemoteEngine:
    """Reach the server, choose the model and how to talk to it; one :class:`RemoteError` line when it cannot be."""
    import httpx

    report = progress or (lambda step: None)
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    client = httpx.Client(headers=headers, timeout=httpx.Timeout(target.timeout, connect=CONNECT_TIMEOUT_S))
    report(f"{target.shown}: connecting")
    try:
        listed = list_models(client, target)
        model = choose_model(target, listed)
        if model not in {entry["id"] for entry in listed}:
            # Servers that load models on demand (transformers serve, Ollama) list only some of what they serve:
            # one token tells whether this one is there, and starts loading it now rather than at the first question.
            report(f"{target.shown}: not listed; asking the server for it")
            probe_model(client, target, model, listed)
        report(f"{target.shown}: {model}")
        engine = _engine_for(target, client, model, listed)
    except BaseException:
        client.close()
        raise
    for note in engine.notes:
        report(note)
    report(f"{target.shown}: ready ({engine.api} API, {engine.context_limit}-token context)")
    return engine


def list_models(client: Any, target: RemoteTarget) -> list[dict[str, Any]]:
    import httpx

    try:
        response = client.get(target.url + "/models", timeout=CONNECT_TIMEOUT_S)
    except httpx.TimeoutException:
        raise RemoteError(f"{target.url} did not answer within {CONNECT_TIMEOUT_S:.0f} s; "
                          "check that the server is up and the address in -m") from None
    except (httpx.HTTPError, OSError) as error:
        raise RemoteError(f"cannot reach {target.url} ({describe(error)}); start the server or check the address in -m") \
            from None
    if response.status_code == 404:
        raise RemoteError(f"{target.url} has no /models route (HTTP 404): an OpenAI-compatible API usually ends in /v1")
    if response.status_code >= 400:
        raise http_failure(target, response, what="the model list")
    try:
        data = response.json().get("data")
    except (ValueError, AttributeError):
        data = None
    if not isinstance(data, list):
        raise RemoteError(f"{target.url}/models did not answer with an OpenAI-style model list; is it an "
                          "OpenAI-compatible server?")
    return [entry for entry in data if isinstance(entry, dict) and entry.get("id")]


def choose_model(target: RemoteTarget, listed: list[dict[str, Any]]) -> str:
    ids = [str(entry["id"]) for entry in listed]
    named = ", ".join(ids[:12]) + (", ..." if len(ids) > 12 else "")
    if target.model:
        return target.model
    if len(ids) == 1:
        return ids[0]
    if not ids:
        raise RemoteError(f"{target.url} lists no models; name the one to use as -m {target.url}#MODEL")
    raise RemoteError(f"{target.url} serves {len(ids)} models ({named}); choose one with "
                      f"-m {target.name or target.url}#MODEL")


def probe_model(client: Any, target: RemoteTarget, model: str, listed: list[dict[str, Any]]) -> None:
    import httpx

    try:
        response = client.post(target.url + "/completions", json={"model": model, "prompt": "def", "max_tokens": 1})
    except (httpx.HTTPError, OSError) as error:
        raise RemoteError(f"{target.url} did not answer for model {model!r} ({describe(error)})") from None
    if response.status_code in (401, 403):
        raise http_failure(target, response, what="the request")
    if response.status_code >= 400:
        ids = [str(entry["id"]) for entry in listed]
        has = f"it has: {', '.join(ids[:12])}" if ids else "it lists none"
        raise RemoteError(f"{target.url} has no model {model!r} (HTTP {response.status_code}); {has} "
                          f"(name one as -m {target.name or target.url}#MODEL)")


def _engine_for(target: RemoteTarget, client: Any, model: str, listed: list[dict[str, Any]]) -> RemoteEngine:
    notes: list[str] = []
    entry = next((item for item in listed if item.get("id") == model), {})
    tokenizer = local_tokenizer(target.tokenizer or model)
    root = target.url.removesuffix("/v1")
    if tokenizer is None:
        tokenizer = ServerTokenizer.probe(client, root, model)
    if tokenizer is None:
        tokenizer = ByteCounter()
        notes.append(f"{target.shown}: counting context by bytes, which never overflows but keeps less history "
                     "(set tokenizer = PATH-OR-HUB-ID in its [endpoints] table to count tokens exactly)")
    context = served_context(entry) or target.context or local_context(target.tokenizer or model)
    if context is None:
        context = ASSUMED_CONTEXT
        notes.append(f"{target.shown}: the server does not say its context size; assuming {ASSUMED_CONTEXT} tokens "
                     "(set context = N in its [endpoints] table)")
    api = target.api if target.api != "auto" else auto_api(model, tokenizer)
    return RemoteEngine(target, client, model, api, PromptRenderer(tokenizer, context), notes)


def served_context(entry: Mapping[str, Any]) -> int | None:
    """The context size a model list reports: vLLM's max_model_len, llama.cpp's n_ctx_train, and others'."""
    meta = entry.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    for value in (entry.get("max_model_len"), entry.get("context_length"), entry.get("max_context_length"),
                  meta.get("n_ctx_train")):
        if isinstance(value, int) and value > 0:
            return value
    return None


def auto_api(model: str, tokenizer: Any) -> str:
    """completions for the StarChat family (no chat template a server could apply), chat for everything else."""
    from ..chat.template import CHAT_TEMPLATE

    if "starchat" in model.lower():
        return "completions"
    if not isinstance(tokenizer, (ByteCounter, ServerTokenizer)):
        own = getattr(tokenizer, "chat_template", None)
        if not own or own == CHAT_TEMPLATE:
            return "completions"
    return "chat"
