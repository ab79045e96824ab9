"""Loading and validating training dialogues: every source, every rule, bad rows named by file and line."""

from __future__ import annotations

import json

import pytest

from starchat_tui.errors import UsageError
from starchat_tui.training.data import Columns, load_dialogues, parse_role_map, raise_for_problems

GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_jsonl_problems_name_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [
        GOOD,
        "",  # a blank line still counts as a line
        {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]},
        "{not json",
        GOOD,
    ])
    dialogues = load_dialogues(str(path), Columns())
    assert len(dialogues.messages) == 2
    assert dialogues.origins == [f"{path}:1", f"{path}:5"]
    assert [p.origin for p in dialogues.problems] == [f"{path}:3", f"{path}:4"]
    assert "unknown role 'bot'" in dialogues.problems[0].message
    assert "role_map" in dialogues.problems[0].message
    assert "invalid JSON" in dialogues.problems[1].message


@pytest.mark.parametrize(("messages", "expected"), [
    ([{"role": "assistant", "content": "first"}], "the first turn must be a user turn"),
    ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "two user turns in a row"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "assistant", "content": "c"}],
     "two assistant turns in a row"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "late"}], "a system message can only come first"),
    ([{"role": "user", "content": "   "}, {"role": "assistant", "content": "b"}], "empty user message"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": ""}], "empty assistant message"),
    ([{"role": "user", "content": ["a"]}], "a list as 'content'"),
    ([{"role": "user"}], "no 'content'"),
    ([{"content": "a"}], "no 'role'"),
    (["just text"], "expected an object"),
    ([], "no messages"),
])
def test_each_validation_rule(tmp_path, messages, expected):
    path = write_jsonl(tmp_path / "d.jsonl", [{"messages": messages}])
    dialogues = load_dialogues(str(path), Columns())
    assert not dialogues.messages
    assert expected in dialogues.problems[0].message
    assert dialogues.problems[0].origin == f"{path}:1"


def test_rows_that_are_not_dialogues(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", ["[1, 2]", {"text": "x", "label": 1}, {"messages": "hi"}])
    problems = [p.message for p in load_dialogues(str(path), Columns()).problems]
    assert "expected a JSON object" in problems[0]
    assert "no 'messages' column (columns: 'text', 'label')" in problems[1]
    assert "must be a list of messages" in problems[2]


def test_report_lists_the_first_bad_rows_and_the_fix(tmp_path):
    bad = {"messages": [{"role": "user", "content": ""}]}
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD] + [bad] * 14)
    dialogues = load_dialogues(str(path), Columns())
    with pytest.raises(UsageError) as caught:
        raise_for_problems(dialogues, skip_invalid=False)
    text = str(caught.value)
    assert text.startswith("14 of 15 rows are invalid:")
    assert f"{path}:2: message 1: empty user message" in text
    assert f"{path}:11:" in text and f"{path}:12:" not in text
    assert "... and 4 more" in text
    assert "--skip-invalid" in text
    raise_for_problems(dialogues, skip_invalid=True)  # no error: the caller drops them


def test_trailing_user_turns_interrupted_replies_and_replyless_rows(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"messages": GOOD["messages"] + [{"role": "user", "content": "and?"}]},
        {"messages": GOOD["messages"] + [{"role": "user", "content": "more"},
                                         {"role": "assistant", "content": "half an ans", "interrupted": True}]},
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]},
    ])
    dialogues = load_dialogues(str(path), Columns())
    assert dialogues.messages == [GOOD["messages"], GOOD["messages"]]
    assert (dialogues.trimmed_user_turns, dialogues.cut_at_interrupted, dialogues.without_reply) == (2, 1, 1)
    assert "1 without an assistant reply dropped" in dialogues.summary()


def test_json_list_single_object_and_wrapped_list(tmp_path):
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([GOOD, {"messages": []}]))
    dialogues = load_dialogues(str(listed), Columns())
    assert dialogues.origins == [f"{listed}[0]"] and dialogues.problems[0].origin == f"{listed}[1]"

    single = tmp_path / "one.json"
    single.write_text(json.dumps(GOOD, indent=2))
    assert load_dialogues(str(single), Columns()).messages == [GOOD["messages"]]

    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"conversations": [GOOD, GOOD]}))
    assert len(load_dialogues(str(wrapped), Columns()).messages) == 2

    lines = tmp_path / "lines.json"  # JSON lines under a .json name, as datasets accepts
    write_jsonl(lines, [GOOD, GOOD])
    assert load_dialogues(str(lines), Columns()).origins == [f"{lines}:1", f"{lines}:2"]


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([GOOD, GOOD]), path)
    dialogues = load_dialogues(str(path), Columns())
    assert dialogues.messages == [GOOD["messages"]] * 2
    assert dialogues.origins == [f"{path}[0]", f"{path}[1]"]


def test_history_exports_load_as_they_are(tmp_path):
    from starchat_tui.store.transcripts import Transcript, to_json, to_jsonl, to_markdown

    messages = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "sort?"},
                {"role": "assistant", "content": "```python\nsorted(x)\n```\n"}]
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "all.jsonl").write_text(to_jsonl([Transcript(messages), Transcript(messages)]))
    (folder / "one.json").write_text(to_json(Transcript(messages)))
    (folder / "chat.md").write_text(to_markdown(Transcript(messages, title="Sorting")))
    (folder / "README.md").write_text("# My exports\nNot a transcript.\n")
    (folder / ".hidden.jsonl").write_text("garbage\n")
    dialogues = load_dialogues(str(folder), Columns())
    assert dialogues.messages == [messages] * 4
    assert not dialogues.problems
    assert sorted({o.split("/")[-1].split(":")[0].split("[")[0] for o in dialogues.origins}) == [
        "all.jsonl", "chat.md", "one.json"]


def test_other_column_and_role_names(tmp_path):
    sharegpt = write_jsonl(tmp_path / "sharegpt.jsonl", [
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]},
    ])
    columns = Columns(messages="conversations", role="from", content="value",
                      role_map=parse_role_map("human=user, gpt=assistant"))
    assert load_dialogues(str(sharegpt), columns).messages == [GOOD["messages"]]

    pairs = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "hi", "completion": "hello"}])
    dialogues = load_dialogues(str(pairs), Columns(system_prompt="You help."))
    assert dialogues.messages == [[{"role": "system", "content": "You help."}] + GOOD["messages"]]


def test_role_map_errors():
    assert parse_role_map({"human": "user"}) == {"human": "user"}
    with pytest.raises(UsageError, match="NAME=ROLE"):
        parse_role_map("human:user")
    with pytest.raises(UsageError, match="maps to 'robot'"):
        parse_role_map("gpt=robot")


def test_missing_paths_and_empty_folders(tmp_path):
    with pytest.raises(UsageError, match="no such file or folder"):
        list(load_dialogues(str(tmp_path / "nope.jsonl"), Columns()).messages)
    with pytest.raises(UsageError, match="no .jsonl, .json, .parquet"):
        load_dialogues(str(tmp_path), Columns())
    odd = tmp_path / "data.csv"
    odd.write_text("a,b\n")
    with pytest.raises(UsageError, match="unsupported file type .csv"):
        load_dialogues(str(odd), Columns())


def test_limit_keeps_validating_every_row(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, GOOD, GOOD, {"messages": []}])
    dialogues = load_dialogues(str(path), Columns(), limit=1)
    assert len(dialogues.messages) == 1
    assert len(dialogues.problems) == 1 and dialogues.rows == 4
