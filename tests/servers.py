"""OpenAI-compatible servers for the remote-engine tests.

:class:`RealServer` is ``transformers serve`` (transformers' own OpenAI-compatible server) on 127.0.0.1: the tests
drive starchat-tui against it. :class:`FakeServer` answers with whatever a test scripts, for what a real server
cannot be made to do on cue (a 401, a malformed event); it never stands in for the real one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RealServer:
    """``transformers serve`` in a process group of its own; ``model`` preloads one and is the only one listed."""

    def __init__(self, home: Path, model: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        home.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(home / "hf"), "TOKENIZERS_PARALLELISM": "false",
               "OMP_NUM_THREADS": "1"}
        command = [str(Path(sys.executable).parent / "transformers"), "serve", "--host", "127.0.0.1",
                   "--port", str(self.port)]
        self.log = home / f"serve-{self.port}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([*command, *([model] if model else [])], env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_up()

    def _wait_up(self, within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url.removesuffix("/v1") + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"transformers serve did not start within {within} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """Die at once, as a crashed server does, mid-answer included."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


Respond = Callable[[BaseHTTPRequestHandler], None]


class FakeServer:
    """A scripted HTTP server: ``routes`` maps "GET /v1/models" and the like to a function that writes the answer.
    Requests it saw are kept, headers included, in :attr:`seen`."""

    def __init__(self, routes: dict[str, Respond]) -> None:
        seen: list[dict[str, object]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                seen.append({"route": f"{self.command} {self.path}", "headers": dict(self.headers), "body": body})
                respond = routes.get(f"{self.command} {self.path}")
                if respond is None:
                    send_json(self, 404, {"error": {"message": "no such route"}})
                else:
                    respond(self)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: object) -> None:
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def send_events(handler: BaseHTTPRequestHandler, frames: list[str]) -> None:
    """Server-sent events, each ``frames`` item as one ``data:`` line, flushed one at a time."""
    handler.send_response(200)
    handler.send_header("content-type", "text/event-stream")
    handler.end_headers()
    for frame in frames:
        handler.wfile.write(f"data: {frame}\n\n".encode())
        handler.wfile.flush()
        time.sleep(0.02)


def one_model(name: str = "fake-model") -> Respond:
    return lambda handler: send_json(handler, 200, {"object": "list", "data": [{"id": name, "object": "model"}]})


def text_frame(text: str) -> str:
    return json.dumps({"choices": [{"index": 0, "text": text}]})
