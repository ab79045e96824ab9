"""The session store on real SQLite files: durability settings, migrations, sessions, messages, search."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading

import pytest

from starchat_tui.errors import UsageError
from starchat_tui.store import Session, SessionStore, migrations
from starchat_tui.store.sessions import TITLE_LIMIT


@pytest.fixture
def store(tmp_path):
    with SessionStore(tmp_path / "data" / "sessions.db") as opened:
        yield opened


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- the file ---------------------------------------------------------------------------------------


def test_default_path_is_in_the_data_dir_and_private(isolated_home):
    with SessionStore() as store:
        session = store.create_session("demo")
        store.add_message(session.id, "user", "hi")
        assert store.path == isolated_home / "data" / "sessions.db"
        for suffix in ("", "-wal", "-shm"):
            assert mode_of(f"{store.path}{suffix}") == 0o600, suffix


def test_wal_full_sync_foreign_keys_and_schema_version(store):
    raw = sqlite3.connect(store.path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST_VERSION
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    raw.close()


def test_a_looser_existing_file_is_made_private(tmp_path):
    path = tmp_path / "sessions.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    SessionStore(path).close()
    assert mode_of(path) == 0o600


def test_a_file_that_is_not_a_database_is_a_one_line_usage_error(tmp_path):
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is not sqlite at all, just some bytes" * 100)
    with pytest.raises(UsageError, match="not a usable sessions database.*move the file aside") as caught:
        SessionStore(path)
    assert "\n" not in str(caught.value)
    assert path.read_bytes().startswith(b"this is not sqlite"), "the user's file must be left alone"


def test_a_folder_that_cannot_be_made_is_a_usage_error(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(UsageError, match="cannot open the sessions database.*STARCHAT_TUI_DATA_DIR"):
        SessionStore(blocker / "sessions.db")


# -- migrations -------------------------------------------------------------------------------------


def test_migrations_run_once_and_reopening_keeps_data(tmp_path):
    path = tmp_path / "sessions.db"
    with SessionStore(path) as store:
        session = store.create_session("demo")
        store.add_message(session.id, "user", "kept")
    raw = sqlite3.connect(path)
    assert migrations.migrate(raw) == 0
    raw.close()
    with SessionStore(path) as store:
        assert store.messages(session.id) == [{"role": "user", "content": "kept"}]


def test_a_newer_schema_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "sessions.db"
    SessionStore(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {migrations.LATEST_VERSION + 1}")
    raw.close()
    with pytest.raises(UsageError, match="newer starchat-tui.*upgrade starchat-tui"):
        SessionStore(path)


def test_a_failing_migration_leaves_the_previous_version_intact(tmp_path, monkeypatch):
    path = tmp_path / "sessions.db"
    with SessionStore(path) as store:
        session = store.create_session("demo")
        store.add_message(session.id, "user", "before the upgrade")
    broken = migrations.Migration(
        migrations.LATEST_VERSION + 1, "half works",
        "ALTER TABLE sessions ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;\nTHIS IS NOT SQL;",
    )
    monkeypatch.setattr(migrations, "MIGRATIONS", (*migrations.MIGRATIONS, broken))
    monkeypatch.setattr(migrations, "LATEST_VERSION", broken.version)
    with pytest.raises(sqlite3.OperationalError):
        SessionStore(path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == broken.version - 1
    columns = [row[1] for row in raw.execute("PRAGMA table_info(sessions)")]
    assert "pinned" not in columns, "the half-applied step must be rolled back"
    raw.close()


def test_split_statements_keeps_trigger_bodies_whole():
    sql = "CREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;\n"
    assert migrations.split_statements(sql) == [
        "CREATE TABLE a (x);", "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n  SELECT 1;\n  SELECT 2;\nEND;",
    ]


# -- sessions and messages --------------------------------------------------------------------------


def test_create_and_read_back_a_session(store):
    session = store.create_session("bigcode/starchat-beta", "Be brief.", {"temperature": 0.5})
    assert isinstance(session, Session)
    assert len(session.id) == 8 and session.id.isalnum()
    assert (session.model, session.system, session.settings) == ("bigcode/starchat-beta", "Be brief.", {"temperature": 0.5})
    assert session.title == "" and session.message_count == 0
    assert session.created_at.tzinfo is not None and session.updated_at >= session.created_at
    assert store.get_session(session.id) == session


def test_messages_are_saved_in_order_with_their_extras(store):
    session = store.create_session("demo", "Be brief.")
    first = store.add_message(session.id, "user", "How do I sort?")
    second = store.add_message(session.id, "assistant", "sorted(x)", interrupted=True)
    assert isinstance(first, int) and second > first
    assert store.messages(session.id) == [
        {"role": "user", "content": "How do I sort?"},
        {"role": "assistant", "content": "sorted(x)", "interrupted": True},
    ]
    conversation = store.conversation(session.id)
    assert conversation.messages[0] == {"role": "system", "content": "Be brief."}
    assert conversation.messages[1:] == store.messages(session.id)


def test_the_system_role_is_not_a_message(store):
    session = store.create_session("demo")
    with pytest.raises(ValueError, match="set_system"):
        store.add_message(session.id, "system", "no")
    with pytest.raises(UsageError, match="no session"):
        store.add_message("feedbeef", "user", "to nowhere")


def test_a_streamed_answer_reads_interrupted_until_its_final_save(store):
    session = store.create_session("demo")
    store.add_message(session.id, "user", "count")
    reply = store.add_message(session.id, "assistant", "", final=False)
    assert store.messages(session.id)[-1] == {"role": "assistant", "content": "", "interrupted": True}
    store.update_message(reply, "one two")
    assert store.messages(session.id)[-1] == {"role": "assistant", "content": "one two", "interrupted": True}
    store.update_message(reply, "one two three", final=True)
    assert store.messages(session.id)[-1] == {"role": "assistant", "content": "one two three"}


def test_update_message_sets_and_clears_the_interrupted_flag(store):
    session = store.create_session("demo")
    reply = store.add_message(session.id, "assistant", "")
    store.update_message(reply, "part", interrupted=True, final=True)
    assert store.messages(session.id) == [{"role": "assistant", "content": "part", "interrupted": True}]
    store.update_message(reply, "part and the rest", final=True)  # None leaves the flag alone
    assert store.messages(session.id)[0]["interrupted"] is True
    store.update_message(reply, "part and the rest", interrupted=False, final=True)
    assert store.messages(session.id) == [{"role": "assistant", "content": "part and the rest"}]


def test_updating_a_deleted_message_is_a_clear_error(store):
    session = store.create_session("demo")
    reply = store.add_message(session.id, "assistant", "x")
    store.truncate(session.id, 0)
    with pytest.raises(UsageError, match="no message"):
        store.update_message(reply, "y")


def test_the_title_is_the_first_user_line_until_renamed(store):
    session = store.create_session("demo")
    store.add_message(session.id, "user", "\n   How do I   reverse a list?  \nin place, please")
    store.add_message(session.id, "user", "second question")
    assert store.get_session(session.id).title == "How do I reverse a list?"
    store.rename(session.id, "  Lists ")
    assert store.get_session(session.id).title == "Lists"
    store.truncate(session.id, 0)
    assert store.get_session(session.id).title == "Lists", "a chosen title outlives the messages"
    store.rename(session.id, "")
    assert store.get_session(session.id).title == ""
    store.add_message(session.id, "user", "x" * 200)
    title = store.get_session(session.id).title
    assert len(title) == TITLE_LIMIT and title.endswith("…")


def test_editing_the_first_message_updates_an_automatic_title(store):
    session = store.create_session("demo")
    store.add_message(session.id, "user", "first try")
    store.add_message(session.id, "assistant", "answer")
    store.truncate(session.id, 0)
    assert store.get_session(session.id).title == ""
    store.add_message(session.id, "user", "second try")
    assert store.get_session(session.id).title == "second try"


def test_list_sessions_newest_activity_first(store):
    a = store.create_session("demo")
    b = store.create_session("demo")
    c = store.create_session("demo")
    assert [s.id for s in store.list_sessions()] == [c.id, b.id, a.id]
    store.add_message(a.id, "user", "bump")
    assert [s.id for s in store.list_sessions()] == [a.id, c.id, b.id]
    assert [s.id for s in store.list_sessions(limit=2)] == [a.id, c.id]
    assert store.last_session().id == a.id
    assert store.list_sessions()[0].message_count == 1


def test_last_session_of_an_empty_store_is_none(store):
    assert store.last_session() is None
    assert store.list_sessions() == []


def test_get_session_by_prefix(store):
    sessions = [store.create_session("demo") for _ in range(40)]
    target = sessions[7]
    assert store.get_session(target.id.upper()).id == target.id
    assert store.get_session(f"  {target.id[:6]} ").id == target.id
    by_first = {}
    for s in sessions:
        by_first.setdefault(s.id[0], []).append(s.id)
    shared = next(ids for ids in by_first.values() if len(ids) > 1)  # 40 ids over 16 hex digits
    with pytest.raises(UsageError, match="matches several sessions.*type more of the ID"):
        store.get_session(shared[0][0])
    with pytest.raises(UsageError, match="no session 'nothere'.*history list"):
        store.get_session("nothere")
    with pytest.raises(UsageError, match="no session ID given"):
        store.get_session("  ")


def test_delete_removes_messages_and_search_hits(store):
    keep = store.create_session("demo")
    gone = store.create_session("demo")
    store.add_message(keep.id, "user", "asyncio in the kept one")
    store.add_message(gone.id, "user", "asyncio in the deleted one")
    store.delete(gone.id)
    assert [s.id for s in store.list_sessions()] == [keep.id]
    assert store._db.execute("SELECT COUNT(*) FROM messages WHERE session_id = ?", (gone.id,)).fetchone()[0] == 0
    assert [s.id for s, _ in store.search("asyncio")] == [keep.id]
    with pytest.raises(UsageError):
        store.delete(gone.id)


def test_set_system_settings_and_model(store):
    session = store.create_session("demo", "old")
    store.set_system(session.id, "new system")
    store.set_settings(session.id, {"temperature": 0, "max_new_tokens": 64})
    store.set_model(session.id, "bigcode/starchat-beta")
    again = store.get_session(session.id)
    assert (again.system, again.settings, again.model) == ("new system", {"temperature": 0, "max_new_tokens": 64}, "bigcode/starchat-beta")
    store.set_system(session.id, None)
    assert store.get_session(session.id).system is None
    assert store.conversation(session.id).messages == []


def test_fork_copies_the_first_messages_into_a_new_session(store):
    source = store.create_session("demo", "sys", {"temperature": 0.7})
    for n in range(3):
        store.add_message(source.id, "user", f"question {n}")
        store.add_message(source.id, "assistant", f"answer {n}", **({"interrupted": True} if n == 1 else {}))
    fork = store.fork(source.id, 4)
    assert fork.id != source.id and fork.forked_from == source.id
    assert (fork.model, fork.system, fork.settings, fork.title) == ("demo", "sys", {"temperature": 0.7}, "question 0")
    assert store.messages(fork.id) == store.messages(source.id)[:4]
    store.add_message(fork.id, "user", "only in the fork")
    assert len(store.messages(source.id)) == 6, "the original is untouched"
    assert store.fork(source.id, 0).message_count == 0
    with pytest.raises(UsageError, match="has 6"):
        store.fork(source.id, 7)


def test_truncate_keeps_the_first_messages(store):
    session = store.create_session("demo")
    for text in ("q1", "a1", "q2", "a2"):
        store.add_message(session.id, "user" if text[0] == "q" else "assistant", text)
    store.truncate(session.id, 3)
    assert [m["content"] for m in store.messages(session.id)] == ["q1", "a1", "q2"]
    store.add_message(session.id, "assistant", "a2 again")
    assert [m["content"] for m in store.messages(session.id)] == ["q1", "a1", "q2", "a2 again"]
    with pytest.raises(UsageError, match="cannot keep 9"):
        store.truncate(session.id, 9)


# -- search -----------------------------------------------------------------------------------------


def test_search_finds_words_and_prefixes_one_hit_per_session(store):
    a = store.create_session("demo")
    store.add_message(a.id, "user", "How do I use asyncio.run?")
    store.add_message(a.id, "assistant", "Call asyncio.run(main()) once, at the top.")
    b = store.create_session("demo")
    store.add_message(b.id, "user", "Sort a list")
    results = store.search("asyncio")
    assert [s.id for s, _ in results] == [a.id]
    assert "«asyncio»" in results[0][1]
    assert [s.id for s, _ in store.search("asyn")] == [a.id], "words match as prefixes"
    assert [s.id for s, _ in store.search("SORT list")] == [b.id]
    assert store.search("sort asyncio") == [], "every word must match"


def test_search_takes_the_text_literally(store):
    session = store.create_session("demo")
    store.add_message(session.id, "user", 'He said "NEAR" AND left (quickly) * -- ^x:y')
    for text in ('"NEAR', "AND left", "(quickly", "x:y", "said NEAR*"):
        assert [s.id for s, _ in store.search(text)] == [session.id], text
    assert store.search('"()*') == []
    assert store.search("") == []


def test_search_snippets_are_one_line_and_limits_apply(store):
    for n in range(5):
        session = store.create_session("demo")
        store.add_message(session.id, "assistant", f"line one\n\npandas dataframe number {n}\n\tmore")
    results = store.search("pandas", limit=3)
    assert len(results) == 3
    for _, snippet in results:
        assert "\n" not in snippet and "\t" not in snippet and "«pandas»" in snippet
    _, snippet = store.search("dataframe", marks=("[", "]"))[0]
    assert "[dataframe]" in snippet


def test_search_sees_streamed_updates(store):
    session = store.create_session("demo")
    reply = store.add_message(session.id, "assistant", "", final=False)
    store.update_message(reply, "talking about goroutines")
    assert [s.id for s, _ in store.search("goroutines")] == [session.id]
    store.update_message(reply, "talking about threads", final=True)
    assert store.search("goroutines") == []


# -- prompt history ---------------------------------------------------------------------------------


def test_prompt_history_newest_last_without_repeats_or_blanks(store):
    for text in ("first", "second", "second", "   ", "", "multi\nline", "first"):
        store.add_prompt(text)
    assert store.prompts() == ["first", "second", "multi\nline", "first"]
    assert store.prompts(limit=2) == ["multi\nline", "first"]


# -- sharing ----------------------------------------------------------------------------------------


def test_two_stores_on_one_file_see_each_other(tmp_path):
    path = tmp_path / "sessions.db"
    with SessionStore(path) as one, SessionStore(path) as two:
        session = one.create_session("demo")
        one.add_message(session.id, "user", "from one")
        two.add_message(session.id, "assistant", "from two")
        assert [m["content"] for m in one.messages(session.id)] == ["from one", "from two"]


def test_threads_can_share_a_store(store):
    session = store.create_session("demo")
    errors = []

    def writer(tag: str) -> None:
        try:
            for n in range(25):
                mid = store.add_message(session.id, "assistant", "", final=False)
                store.update_message(mid, f"{tag}{n}", final=True)
                store.add_prompt(f"{tag}{n}")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    contents = [m["content"] for m in store.messages(session.id)]
    assert sorted(contents) == sorted(f"{t}{n}" for t in "ab" for n in range(25))
    assert len(store.prompts()) == 50
