"""Print mode for scripts: ``--format jsonl`` events and ``--output FILE``, through cli.main in-process."""

from __future__ import annotations

import json

from starchat_tui import cli

GREEDY = ("-o", "temperature=0", "-o", "max_new_tokens=30")


def ask(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_jsonl_is_one_event_a_line_and_the_deltas_are_the_answer(capsys, tiny_model):
    code, out, err = ask(capsys, "-p", "hello", "-m", tiny_model, *GREEDY, "--format", "jsonl")
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]  # every line parses on its own
    assert events[0] == {"type": "start", "model": tiny_model}
    assert events[-1]["type"] == "end" and events[-1]["interrupted"] is False
    assert {"prompt_tokens", "new_tokens", "tokens_per_s"} <= events[-1]["stats"].keys()
    deltas = [e for e in events[1:-1] if e["type"] == "delta"]
    assert deltas and len(deltas) == len(events) - 2
    code, whole, err = ask(capsys, "-p", "hello", "-m", tiny_model, *GREEDY, "--json")
    assert code == 0, err
    assert "".join(d["text"] for d in deltas) == json.loads(whole)["reply"]


def test_jsonl_errors_are_events_and_keep_the_exit_code(capsys, tiny_model, tmp_path):
    code, out, err = ask(capsys, "-p", "hi", "-m", str(tmp_path / "missing"), "--format", "jsonl")
    assert code == 3
    [event] = [json.loads(line) for line in out.splitlines()]
    assert event["type"] == "error" and event["exit_code"] == 3 and "does not exist" in event["message"]
    assert f"starchat-tui: error: {event['message']}" in err
    code, out, err = ask(capsys, "-p", "hi", "-m", tiny_model, "-o", "tempreture=1", "--format", "jsonl")
    assert code == 2 and json.loads(out)["type"] == "error" and "did you mean 'temperature'" in out
    code, out, err = ask(capsys, "-p", "hi", "--json", "--format", "jsonl")
    assert code == 2 and "--json is short for --format json" in err


def test_output_writes_the_answer_and_never_replaces_a_file_unasked(capsys, tiny_model, tmp_path):
    target = tmp_path / "answer.md"
    code, out, err = ask(capsys, "-p", "hello", "-m", tiny_model, *GREEDY, "--output", str(target))
    assert code == 0, err
    assert target.read_text() == out, "the file holds the answer, as stdout showed it"
    assert out.strip()
    target.write_text("mine\n")
    code, out, err = ask(capsys, "-p", "hello", "-m", tiny_model, *GREEDY, "--output", str(target))
    assert code == 2 and out == ""
    assert f"{target} exists; pass --force to overwrite it" in err
    assert "loading" not in err, "refused before the model loads"
    assert target.read_text() == "mine\n"
    code, out, err = ask(capsys, "-p", "hello", "-m", tiny_model, *GREEDY, "--output", str(target), "--force",
                         "--format", "jsonl")
    assert code == 0, err
    answer = "".join(json.loads(line).get("text", "") for line in out.splitlines())
    assert target.read_text() == answer + ("" if answer.endswith("\n") else "\n")
    code, out, err = ask(capsys, "-p", "hello", "--output", str(tmp_path / "no" / "such" / "x.md"))
    assert code == 2 and "no such folder" in err
    code, out, err = ask(capsys, "-p", "hello", "--force")
    assert code == 2 and "--force goes with --output FILE" in err
    code, out, err = ask(capsys, "hello", "--output", str(tmp_path / "y.md"))
    assert code == 2 and "go with -p/--print" in err
