"""`starchat-tui history`: driven through cli.main in-process, and once as a real subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from starchat_tui import cli
from starchat_tui.store import SessionStore


@pytest.fixture
def store(isolated_home):
    with SessionStore() as opened:
        yield opened


def make_session(store, model="demo", turns=(("How do I sort a list?", "Use sorted(items)."),), **kwargs):
    session = store.create_session(model, **kwargs)
    for question, reply in turns:
        store.add_message(session.id, "user", question)
        store.add_message(session.id, "assistant", reply)
    return store.get_session(session.id)


def run(capsys, *argv):
    code = cli.main(["history", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_is_one_line_per_session_newest_first(store, capsys):
    old = make_session(store, turns=(("Reverse a string", "s[::-1]"),))
    new = make_session(store, model="bigcode/starchat-beta")
    code, out, err = run(capsys, "list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line[:8] for line in lines] == [new.id, old.id]
    assert re.fullmatch(rf"{new.id}  \d{{4}}-\d\d-\d\d \d\d:\d\d  bigcode/starchat-beta  How do I sort a list\?", lines[0])
    assert lines[1].endswith("demo                   Reverse a string")
    assert run(capsys, "list", "-n", "1")[1].splitlines() == lines[:1]
    assert run(capsys, )[1] == out, "bare `history` lists"


def test_list_with_nothing_saved_says_so_on_stderr(store, capsys):
    code, out, err = run(capsys, "list")
    assert (code, out) == (0, "")
    assert "no saved sessions yet" in err


def test_show_prints_the_whole_session(store, capsys):
    session = make_session(store, system="Be brief.", settings={"temperature": 0.5})
    reply = store.add_message(session.id, "assistant", "partial", final=False)
    store.update_message(reply, "partial answ")
    code, out, _ = run(capsys, "show", session.id[:5])
    assert code == 0
    assert out.splitlines()[0] == f"{session.id}  How do I sort a list?"
    assert "model demo" in out and "3 messages" in out and "settings: temperature=0.5" in out
    assert "── system ──\nBe brief.\n" in out
    assert "── user ──\nHow do I sort a list?\n" in out
    assert "── assistant (interrupted) ──\npartial answ\n" in out


def test_terminal_output_is_inert(store, capsys):
    session = make_session(store, turns=(("\x1b]0;pwned\x07title", "\x1b[2Jcleared"),))
    for argv in (["list"], ["show", session.id], ["search", "pwned"]):
        out = run(capsys, *argv)[1]
        assert "\x1b" not in out and "\x07" not in out, argv
        assert "␛" in out
    exported = run(capsys, "export", session.id, "--format", "json")[1]
    assert json.loads(exported)["messages"][1]["content"] == "\x1b[2Jcleared", "exports are data, kept exact"


def test_search_prints_matching_sessions_with_snippets(store, capsys):
    hit = make_session(store, turns=(("asyncio question", "Use asyncio.run(main())."),))
    make_session(store)
    code, out, err = run(capsys, "search", "asyncio", "run")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{hit.id}  ") and lines[0].endswith("asyncio question")
    assert lines[1].startswith("    ") and "«asyncio»" in lines[1]
    code, out, err = run(capsys, "search", "nothing-like-this")
    assert (code, out) == (0, "") and "no saved session mentions" in err


def test_export_markdown_then_import_gives_the_same_messages(store, capsys, tmp_path):
    session = make_session(store, system="sys", turns=(("q", "```python\nprint(1)\n```\n"), ("", "")))
    target = tmp_path / "chat.md"
    code, out, err = run(capsys, "export", session.id, "-o", str(target))
    assert code == 0 and out == "" and f"wrote 1 session to {target}" in err
    assert target.read_text().startswith("---\nstarchat-tui-transcript: 1\n")
    code, out, _ = run(capsys, "import", str(target))
    assert code == 0
    (new_id,) = out.split()
    assert store.conversation(new_id).messages == store.conversation(session.id).messages
    assert store.get_session(new_id).model == "demo"


def test_export_refuses_to_overwrite_without_force(store, capsys, tmp_path):
    session = make_session(store)
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "notes.md"
    target.write_text("the user's own notes")
    code, _, err = run(capsys, "export", session.id, "-o", str(target))
    assert code == 2 and "exists; pass --force" in err
    assert target.read_text() == "the user's own notes"
    assert run(capsys, "export", session.id, "-o", str(target), "--force")[0] == 0
    assert "How do I sort a list?" in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["notes.md"], "no temp file left behind"


def test_export_all_as_jsonl_is_a_training_dataset(store, capsys, tmp_path):
    first = make_session(store, system="sys")
    second = make_session(store, turns=(("Reverse a string", "s[::-1]"),))
    target = tmp_path / "data.jsonl"
    assert run(capsys, "export", "--all", "-o", str(target))[0] == 0
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert rows == [store.conversation(first.id).to_dict(), store.conversation(second.id).to_dict()]

    datasets = pytest.importorskip("datasets")
    dataset = datasets.load_dataset("json", data_files=str(target), split="train", cache_dir=str(tmp_path / "cache"))
    assert dataset.column_names == ["messages"]
    assert [m["content"] for m in dataset[1]["messages"]] == ["Reverse a string", "s[::-1]"]


def test_export_to_stdout_and_format_errors(store, capsys):
    session = make_session(store)
    code, out, _ = run(capsys, "export", session.id, "--format", "jsonl")
    assert code == 0 and json.loads(out) == store.conversation(session.id).to_dict()
    other = make_session(store)
    code, _, err = run(capsys, "export", session.id, other.id, "--format", "md")
    assert code == 2 and "--format jsonl" in err
    code, _, err = run(capsys, "export")
    assert code == 2 and "name the session to export" in err


def test_import_reads_json_jsonl_and_stdin(store, capsys, tmp_path, monkeypatch):
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"messages": [{"role": "user", "content": "from json"}]}))
    many = tmp_path / "many.txt"  # no telling extension: the content says JSONL
    many.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"line {n}"}]}) + "\n" for n in range(3)))
    code, out, _ = run(capsys, "import", str(single), str(many), "--model", "bigcode/starchat-beta")
    ids = out.split()
    assert code == 0 and len(ids) == 4
    assert [store.messages(i)[0]["content"] for i in ids] == ["from json", "line 0", "line 1", "line 2"]
    assert store.get_session(ids[0]).model == "bigcode/starchat-beta"

    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"messages": [{"role": "user", "content": "piped"}]}')))
    code, out, _ = run(capsys, "import", "-")
    assert code == 0 and store.messages(out.strip())[0]["content"] == "piped"


def test_a_bad_file_imports_nothing(store, capsys, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"messages": [{"role": "user", "content": "ok"}]}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n{"messages": [{"role": "user", "content": 3}]}\n')
    code, out, err = run(capsys, "import", str(good), str(bad))
    assert code == 2 and out == ""
    assert err.strip() == f"starchat-tui: error: {bad} line 2: message 0 has no text content"
    assert store.list_sessions() == []
    code, _, err = run(capsys, "import", str(tmp_path / "missing.md"))
    assert code == 2 and "no such file" in err


def test_rename_and_rm(store, capsys):
    session = make_session(store)
    code, out, _ = run(capsys, "rename", session.id, "Sorting", "notes")
    assert code == 0 and out.rstrip().endswith("Sorting notes")
    assert store.get_session(session.id).title == "Sorting notes"
    code, _, err = run(capsys, "rm", session.id[:2])
    assert code == 2 and "too short" in err
    code, out, _ = run(capsys, "rm", session.id[:4])
    assert code == 0 and out.startswith(f"removed {session.id}")
    assert store.list_sessions() == []
    code, _, err = run(capsys, "show", session.id)
    assert code == 2 and err.strip() == f"starchat-tui: error: no session '{session.id}': see `starchat-tui history list` for the IDs"


def test_several_sessions_export_as_jsonl_unless_told_otherwise(store, capsys):
    first, second = make_session(store), make_session(store)
    code, out, _ = run(capsys, "export", first.id, second.id)
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == [
        store.conversation(first.id).to_dict(), store.conversation(second.id).to_dict()]


def test_bad_flags_are_one_line_errors(store, capsys):
    code, out, err = run(capsys, "export", "--format", "xml")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and "invalid choice: 'xml'" in err and "starchat-tui history export --help" in err
    code, _, err = run(capsys, "bogus")
    assert code == 2 and err.count("\n") == 1
    code, _, err = run(capsys, "list", "-n", "0")
    assert code == 2 and "--limit must be 1 or more" in err


def test_path_names_the_database(store, capsys, isolated_home):
    assert run(capsys, "path")[1].strip() == str(isolated_home / "data" / "sessions.db")


def test_as_a_subprocess_errors_are_one_line_and_nothing_heavy_is_imported(cli_env, starchat_cmd, store):
    session = make_session(store)
    probe = (
        "import sys, runpy; sys.argv = ['starchat-tui', 'history', 'show', sys.argv[1]];"
        "from starchat_tui import cli; code = cli.main();"
        "heavy = [m for m in ('torch', 'transformers', 'textual') if m in sys.modules];"
        "print('HEAVY', heavy); sys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", probe, session.id], capture_output=True, text=True, env=cli_env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout

    done = subprocess.run([*starchat_cmd, "history", "show", "zzzz"], capture_output=True, text=True, env=cli_env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""
