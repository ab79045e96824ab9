"""Remote engine benchmarks, against a real OpenAI-compatible server (``transformers serve`` on 127.0.0.1):

- tokens/s as the TUI and print mode (``-p``) report it, against a bare SSE client (httpx + httpx-sse) reading
  the same request from the same server: what our client, the session loop and the UI cost on top of the wire;
- ``eval --samples 10`` over the endpoint, with 8 requests in flight against 1: the speed-up a batching server
  gives (``transformers serve`` runs with ``--continuous-batching`` here, as vLLM and TGI always batch).
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import Row

AREA = "remote"
NEW_TOKENS = 400
RUNS = 3
QUESTION = "Write a long story about a function."


class Server:
    def __init__(self, model: str, home: Path, *extra: str) -> None:
        import socket

        import httpx

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        command = [str(Path(sys.executable).parent / "transformers"), "serve", "--host", "127.0.0.1", "--port",
                   str(self.port), *extra, model]
        env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(home / "hf"))
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise RuntimeError("transformers serve did not start")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=20)


def bare_rate(url: str, body: dict) -> float:
    """A bare SSE client: the same request, tokens/s from the first token to the last."""
    import httpx
    from httpx_sse import connect_sse

    times = []
    tokens = 0
    with httpx.Client(timeout=120) as client, connect_sse(client, "POST", url, json=body) as source:
        for event in source.iter_sse():
            if event.data.strip() == "[DONE]":
                break
            frame = json.loads(event.data)
            if any(choice.get("text") for choice in frame.get("choices") or []):
                times.append(time.perf_counter())
            tokens = (frame.get("usage") or {}).get("completion_tokens") or tokens
    # Tokens, not events, as the engine counts them: a server may send several tokens in one event.
    tokens = tokens or len(times)
    return (tokens - 1) / (times[-1] - times[0]) if tokens > 1 and times[-1] > times[0] else 0.0


def print_mode_rate(url: str, env: dict) -> float:
    done = subprocess.run([sys.executable, "-m", "starchat_tui", "-m", url, "-o", "temperature=0", "-o",
                           f"max_new_tokens={NEW_TOKENS}", "--json", "-p", QUESTION], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300)
    if done.returncode:
        raise RuntimeError(done.stderr)
    return float(json.loads(done.stdout)["stats"]["tokens_per_s"])


def tui_rate(url: str, env: dict) -> float:
    from bench_tui import STATS, Pty

    terminal = Pty(["-m", url, "-o", "temperature=0", "-o", f"max_new_tokens={NEW_TOKENS}"], env)
    try:
        terminal.read_until(re.compile(rb"completions API"), timeout=120)
        os.write(terminal.fd, QUESTION.encode() + b"\r")
        return float(terminal.read_until(STATS, timeout=300).group(2))
    finally:
        terminal.close()


def bench_rates(model: str, workdir: Path) -> list[Row]:
    from bench_tui import isolated_env

    from starchat_tui.chat.conversation import Conversation
    from starchat_tui.engine.endpoints import remote_target
    from starchat_tui.engine.remote import connect

    server = Server(model, workdir)
    try:
        engine = connect(remote_target(server.url))
        conversation = Conversation()
        conversation.add("user", QUESTION)
        request = engine.request(conversation, do_sample=False, max_new_tokens=NEW_TOKENS)
        env = isolated_env(workdir / "home")
        bare, printed, tui = [], [], []
        for _ in range(RUNS):  # interleaved, so drift in the machine's speed hits all three alike
            bare.append(bare_rate(request["url"], request["json"]))
            printed.append(print_mode_rate(server.url, env))
            tui.append(tui_rate(server.url, env))
        engine.close()
    finally:
        server.stop()
    base = statistics.median(bare)
    rows = [Row(AREA, "bare SSE client tok/s (median)", f"{base:.0f}", "-", None)]
    for name, rates in (("-p", printed), ("TUI", tui)):
        ratio = statistics.median(rates) / base
        rows.append(Row(AREA, f"{name} over the endpoint vs bare SSE", f"{statistics.median(rates):.0f} tok/s = "
                        f"{ratio:.2f}x", ">= 0.97x", ratio >= 0.97))
    return rows


def bench_eval_concurrency(model: str, workdir: Path) -> list[Row]:
    from bench_tui import isolated_env

    tasks = workdir / "tasks.jsonl"
    with tasks.open("w") as handle:
        for index in range(8):
            handle.write(json.dumps({
                "task_id": f"t/{index}", "prompt": f"def add{index}(a, b):\n", "entry_point": f"add{index}",
                "test": "def check(f):\n    assert f(1, 2) == 3\n",
            }) + "\n")
    server = Server(model, workdir, "--continuous-batching")
    env = isolated_env(workdir / "home-eval")
    walls = {}
    try:
        for concurrency in (1, 8):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "starchat_tui", "eval", "--model", server.url, "--tasks",
                                   str(tasks), "--samples", "10", "--concurrency", str(concurrency), "-o",
                                   "max_new_tokens=64", "--allow-unsafe"], env=env, capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=900)
            if done.returncode:
                raise RuntimeError(done.stderr[-2000:])
            walls[concurrency] = time.perf_counter() - started
    finally:
        server.stop()
    return [Row(AREA, "eval --samples 10, 8 tasks: concurrency 1 / 8", f"{walls[1]:.1f} s / {walls[8]:.1f} s = "
                f"{walls[1] / walls[8]:.2f}x", "report", None)]


def run() -> list[Row]:
    from bench_engine import build_model

    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        model = str(build_model(workdir / "model"))
        rows = bench_rates(model, workdir)
        try:
            rows += bench_eval_concurrency(model, workdir)
        except RuntimeError as error:  # an eval without --concurrency, say: report it, keep the other rows
            rows.append(Row(AREA, "eval concurrency 1 vs 8", f"failed: {str(error).strip().splitlines()[-1][:80]}",
                            "report", False))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import print_table

    print_table(run())
