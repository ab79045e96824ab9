"""kill -9 at random moments loses no completed turn, and the database stays sound.

Real subprocesses write through the real store (and, in the slow test, stream from the real engine on
the tiny model); the parent SIGKILLs them at random moments, restarts them on the same session like
`starchat-tui -c` does, and finally checks the file.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from starchat_tui.store import SessionStore

# The writer prints "DONE <json>" only after the final save of a turn has returned: from then on the
# turn is "completed" and must survive anything.
WRITER = textwrap.dedent(
    """
    import json, sys, time
    from starchat_tui.store import SessionStore

    db, model, round_tag = sys.argv[1], sys.argv[2], sys.argv[3]
    store = SessionStore(db)
    last = store.last_session()
    session = last or store.create_session(model or "none")
    if model:
        from starchat_tui import load_engine
        engine = load_engine(model, device="cpu", dtype="float32")
        conversation = store.conversation(session.id)
    print("READY", session.id, flush=True)
    for n in range(1_000_000):
        question = f"question {round_tag}-{n}"
        store.add_message(session.id, "user", question)
        reply_id = store.add_message(session.id, "assistant", "", final=False)
        if model:
            conversation.add("user", question)
            text, saved = "", time.monotonic()
            for chunk in engine.stream(conversation, temperature=0, max_new_tokens=48):
                text += chunk
                if time.monotonic() - saved > 0.01:
                    store.update_message(reply_id, text)
                    saved = time.monotonic()
            reply = conversation.messages[-1]["content"]
        else:
            reply = ""
            for piece in range(20):
                reply += f"piece {piece} of answer {round_tag}-{n}\\n"
                store.update_message(reply_id, reply)
        store.update_message(reply_id, reply, final=True)
        print("DONE", json.dumps([question, reply]), flush=True)
    """
)


def run_and_kill(script, db, model, tag, delay, env) -> tuple[list[tuple[str, str]], bool]:
    """Start the writer, let it finish one turn, SIGKILL it ``delay`` seconds later; return its completed turns.

    Waiting for a first finished turn, rather than a fixed time, keeps the test about durability, not
    about how fast a busy machine writes.
    """
    child = subprocess.Popen(
        [sys.executable, str(script), str(db), model, tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )
    ready = child.stdout.readline()
    assert ready.startswith("READY"), child.stderr.read()
    first = child.stdout.readline()
    assert first.startswith("DONE "), child.stderr.read()
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err
    out = first + out
    done = [tuple(json.loads(line[5:])) for line in out.splitlines() if line.startswith("DONE ")]
    # A line cut in half by the kill is not a completed turn (the print had not returned).
    return done, bool(out) and not out.endswith("\n")


def check_database(db, completed: list[tuple[str, str]]) -> list[dict]:
    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    fts_rows = raw.execute("SELECT COUNT(*) FROM messages_fts").fetchone()[0]
    assert fts_rows == raw.execute("SELECT COUNT(*) FROM messages").fetchone()[0], "the search index matches"
    raw.close()

    with SessionStore(db) as store:
        (session,) = store.list_sessions()
        messages = store.messages(session.id)
    turns = {}
    for index, message in enumerate(messages[:-1]):
        if message["role"] == "user" and messages[index + 1]["role"] == "assistant":
            turns[message["content"]] = messages[index + 1]
    for question, reply in completed:
        assert question in turns, f"completed turn {question!r} is missing"
        assert turns[question] == {"role": "assistant", "content": reply}, f"completed turn {question!r} changed"
    return messages


def test_kill_9_while_writing_loses_no_completed_turn(tmp_path, cli_env):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "data" / "sessions.db"
    rng = random.Random(9)
    completed: list[tuple[str, str]] = []
    for round_index in range(8):
        done, _ = run_and_kill(script, db, "", f"r{round_index}", rng.uniform(0.02, 0.3), cli_env)
        completed += done
    assert len(completed) >= 8, "every round finished at least one turn before its kill"
    messages = check_database(db, completed)
    # Whatever was in flight at a kill is kept too, marked interrupted, never passed off as finished.
    unfinished = [m for m in messages if m.get("interrupted")]
    assert all(m["role"] == "assistant" for m in unfinished)
    assert len(unfinished) <= 8


def test_kill_9_during_first_open_leaves_a_usable_database(tmp_path, cli_env):
    # The writer is ready about 50 ms after it starts; these delays land before, during and after the
    # file is created and migrated.
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    for step in range(10):
        db = tmp_path / f"fresh{step}" / "sessions.db"
        child = subprocess.Popen([sys.executable, str(script), str(db), "", "x"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, env=cli_env)
        time.sleep(0.015 + 0.006 * step)
        child.kill()
        child.wait()
        with SessionStore(db) as store:
            session = store.last_session() or store.create_session("demo")
            store.add_message(session.id, "user", "still works")
            assert store.messages(session.id)[-1]["content"] == "still works"
        raw = sqlite3.connect(db)
        assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        raw.close()


@pytest.mark.slow
def test_kill_9_while_the_engine_streams(tmp_path, cli_env, tiny_model):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    db = tmp_path / "sessions.db"
    rng = random.Random(3)
    completed: list[tuple[str, str]] = []
    for round_index in range(3):
        done, _ = run_and_kill(script, db, tiny_model, f"e{round_index}", rng.uniform(0.3, 1.2), cli_env)
        completed += done
    assert completed, "the engine should have finished some turns"
    assert all(reply for _, reply in completed), "the tiny model answers something"
    check_database(db, completed)
