"""Working on the user's files:

- ``@`` path completion in a git repository of 50,000 files: the time until the first suggestions, on the first
  key (git lists the files) and on the keys after it (the list is reused), against a goal of 100 ms;
- the cost of attaching a 2,000-line file before the first token, and of the next question after it: with the
  KV cache kept from the turn before, against re-prefilling the whole conversation.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import Row

AREA = "files"
FILES = 50_000
LINES = 2_000


def make_repository(folder: Path) -> None:
    for index in range(FILES):
        sub = folder / f"pkg{index % 100:02d}" / f"mod{index // 100 % 50:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"file{index:05d}.py").write_text("")
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    subprocess.run(["git", "-C", str(folder), "add", "-A"], check=True)


def bench_completion(workdir: Path) -> list[Row]:
    from starchat_tui.session import workspace
    from starchat_tui.session.commands import complete

    repository = workdir / "repo"
    make_repository(repository)
    os.chdir(repository)
    first, later = [], []
    for _ in range(5):
        workspace._LISTINGS.clear()
        started = time.perf_counter()
        shown = complete("look at @pkg4")
        first.append(time.perf_counter() - started)
        assert shown, "no suggestions"
        for typed in ("@pkg42/", "@pkg42/mod1", "@file4242", "@p42m17f"):
            started = time.perf_counter()
            assert complete(f"look at {typed}"), typed
            later.append(time.perf_counter() - started)
    first_ms, later_ms = 1000 * statistics.median(first), 1000 * max(later)
    return [
        Row(AREA, f"@ completion, {FILES} files: first key (git lists them)", f"{first_ms:.0f} ms", "<= 100 ms",
            first_ms <= 100),
        Row(AREA, "@ completion: later keys, slowest (prefix, name, fuzzy)", f"{later_ms:.0f} ms", "<= 100 ms",
            later_ms <= 100),
    ]


def bench_attach(workdir: Path) -> list[Row]:
    from starchat_tui.chat.attachments import Attachment
    from starchat_tui.demo.tiny import build_tiny_model
    from starchat_tui.engine import load_engine
    from starchat_tui.session.chat_session import ChatSession

    model = build_tiny_model(workdir / "model", train_steps=0, n_positions=32768)
    engine = load_engine(str(model), device="cpu")
    source = "".join(f"def function_{i}(value):\n    return value * {i} + {i % 7}\n" for i in range(LINES // 2))
    options = {"temperature": 0, "max_new_tokens": 8}

    def ask(chat: ChatSession, text: str) -> float:
        content, _ = chat.compose(engine.renderer, text)
        chat.add_user(content)
        for _ in chat.reply(engine):
            pass
        return engine.stats.ttft_s

    plain = ChatSession(None, model="bench", options=options)
    no_file = ask(plain, "What does function_3 return?")
    chat = ChatSession(None, model="bench", options=options)
    chat.attachments = [Attachment(source="big.py", text=source)]
    with_file = ask(chat, "What does function_3 return?")
    prompt_tokens = engine.stats.prompt_tokens
    reused = ask(chat, "And function_4?")
    engine.reset_cache()
    chat.drop_last_reply()  # the same question again, on a cold cache
    for _ in chat.reply(engine):
        pass
    re_prefilled = engine.stats.ttft_s
    return [
        Row(AREA, f"TTFT, question alone / with a {LINES}-line file attached ({prompt_tokens} tokens)",
            f"{no_file:.2f} s / {with_file:.2f} s", "report", None),
        Row(AREA, "TTFT of the next question: cache kept vs re-prefill", f"{reused:.2f} s vs {re_prefilled:.2f} s = "
            f"{re_prefilled / max(reused, 1e-9):.0f}x", "report", None),
    ]


def run() -> list[Row]:
    here = Path.cwd()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        try:
            rows = bench_completion(workdir)
        finally:
            os.chdir(here)
        rows += bench_attach(workdir)
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from run import print_table

    print_table(run())
