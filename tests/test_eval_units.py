"""The parts of `starchat-tui eval` that need no model: pass@k, code extraction, task files, judge parsing."""

from __future__ import annotations

import gzip
import json
import math
from itertools import combinations

import pytest

from starchat_tui.errors import UsageError
from starchat_tui.eval.extract import code_blocks, extract_code
from starchat_tui.eval.judge import Comparison, JudgeParseError, Verdict, parse_scores, read_verdict, tally
from starchat_tui.eval.passk import default_ks, mean_pass_at_k, pass_at_k
from starchat_tui.eval.rows import is_json_file, json_rows
from starchat_tui.eval.runner import program_for
from starchat_tui.eval.tasks import COMPLETION_INSTRUCTION, EvalTask, load_tasks

# ---------------------------------------------------------------------------------------------------
# pass@k


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """The definition: the share of k-subsets of the n samples that hold at least one pass."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n,c,k", [(1, 0, 1), (1, 1, 1), (5, 1, 1), (5, 2, 3), (7, 3, 2), (10, 0, 5), (10, 9, 2), (6, 6, 6)])
def test_pass_at_k_matches_its_definition(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k))


def test_pass_at_k_closed_form_and_large_n():
    assert pass_at_k(200, 13, 10) == pytest.approx(1 - math.comb(187, 10) / math.comb(200, 10))
    assert pass_at_k(5, 1, 1) == pytest.approx(0.2)
    assert mean_pass_at_k([(2, 1), (2, 0), (2, 2)], 1) == pytest.approx(0.5)


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match="k=3"):
        pass_at_k(2, 1, 3)
    with pytest.raises(ValueError, match="c=4"):
        pass_at_k(3, 4, 1)
    with pytest.raises(ValueError, match="no tasks"):
        mean_pass_at_k([], 1)
    assert default_ks(1) == [1]
    assert default_ks(20) == [1, 10, 20]


# ---------------------------------------------------------------------------------------------------
# Extraction


def test_the_block_that_defines_the_entry_point_wins():
    answer = "Usage:\n```python\nprint(f(2))\n```\nThe function:\n```python\ndef f(x):\n    return x + 1\n```\nDone."
    assert extract_code(answer, "f") == "def f(x):\n    return x + 1\n"
    assert extract_code(answer) == "print(f(2))\n"


def test_unclosed_fences_other_tags_and_bare_code():
    assert extract_code("```py\ndef f(x):\n    return x", "f") == "def f(x):\n    return x\n"
    assert extract_code("```Python3 title\ndef g():\n    pass\n```", "g") == "def g():\n    pass\n"
    assert extract_code("def h(a):\n    return a * 2\n", "h") == "def h(a):\n    return a * 2\n"
    assert extract_code("Use sorted(items) for a new list.", "f") is None
    assert extract_code("```js\nfunction f() {}\n```", "f") is None
    assert extract_code("") is None
    # A block in another language that happens to hold the definition is still the answer.
    assert extract_code("```text\ndef f():\n    return 1\n```", "f") == "def f():\n    return 1\n"
    assert [tag for tag, _ in code_blocks("```\na\n```\n~~~python\nb\n~~~")] == ["", "python"]


def test_program_for_a_body_only_answer_continues_the_prompt_and_keeps_its_imports():
    task = EvalTask("t/0", "from typing import List\n\ndef total(xs: List[int]) -> int:\n", "def check(candidate):\n    assert candidate([1, 2]) == 3\n", "total")
    body = program_for(task, "    return sum(xs)\n")
    assert body.startswith("from typing import List\n\ndef total")
    full = program_for(task, "def total(xs: List[int]) -> int:\n    return sum(xs)\n")
    assert full.startswith("from typing import List\n\ndef total(xs")
    assert full.rstrip().endswith("check(total)")
    namespace: dict = {}
    exec(compile(full, "<t>", "exec"), namespace)  # our own test program, no model output


# ---------------------------------------------------------------------------------------------------
# Task files


HUMANEVAL_ROW = {
    "task_id": "HumanEval/0",
    "prompt": 'def add(a, b):\n    """Add two numbers."""\n',
    "canonical_solution": "    return a + b\n",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
    "entry_point": "add",
}


def test_humaneval_files_load_plain_and_gzipped(tmp_path):
    plain = tmp_path / "tasks.jsonl"
    rows = [HUMANEVAL_ROW, {**HUMANEVAL_ROW, "task_id": "HumanEval/1", "instruction": "Write add(a, b)."}]
    plain.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    packed = tmp_path / "HumanEval.jsonl.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write(plain.read_text())
    for path in (plain, packed):
        tasks = load_tasks(path)
        assert [t.task_id for t in tasks] == ["HumanEval/0", "HumanEval/1"]
        assert tasks[0].user_message().startswith(COMPLETION_INSTRUCTION)
        assert "def add(a, b):" in tasks[0].user_message()
        assert tasks[1].user_message() == "Write add(a, b)."


@pytest.mark.parametrize("line,message", [
    ("{not json", r"tasks.jsonl:2: not valid JSON"),
    ('["a list"]', r"tasks.jsonl:2: expected a JSON object"),
    (json.dumps({"task_id": "x", "prompt": "p", "test": "def check(candidate): pass"}), r":2: missing .*entry_point"),
    (json.dumps({**HUMANEVAL_ROW, "task_id": "x", "test": "assert True"}), r":2: .*does not define check\(candidate\)"),
    (json.dumps({**HUMANEVAL_ROW, "entry_point": "not a name"}), r":2: entry_point 'not a name'"),
    (json.dumps(HUMANEVAL_ROW), r":2: task_id 'HumanEval/0' appears twice"),
])
def test_bad_task_files_name_the_line_and_the_fix(tmp_path, line, message):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(HUMANEVAL_ROW) + "\n" + line + "\n")
    with pytest.raises(UsageError, match=message):
        load_tasks(path)


def test_missing_and_empty_task_files(tmp_path):
    with pytest.raises(UsageError, match="no such tasks file"):
        load_tasks(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(UsageError, match="no tasks in it"):
        load_tasks(tmp_path / "empty.jsonl")


def test_one_reader_for_json_lines_and_json_lists_plain_or_gzipped(tmp_path):
    rows = [{"prompt": "a"}, {"prompt": "b"}]
    lines = tmp_path / "rows.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    listed = tmp_path / "rows.json.gz"
    with gzip.open(listed, "wt") as handle:
        handle.write(json.dumps(rows))
    assert list(json_rows(lines, "prompt")) == [(f"{lines}:1", rows[0]), (f"{lines}:2", rows[1])]
    assert list(json_rows(listed, "prompt")) == [(f"{listed}[0]", rows[0]), (f"{listed}[1]", rows[1])]
    assert all(is_json_file(p) for p in (lines, listed)) and not is_json_file(tmp_path / "prompts.txt")
    single = tmp_path / "one.json"
    single.write_text(json.dumps(rows[0]))
    with pytest.raises(UsageError, match=r"one.json: expected a JSON list of prompt objects, found dict"):
        list(json_rows(single, "prompt"))
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(UsageError, match=r"broken.jsonl.gz: cannot read it"):
        list(json_rows(broken, "task"))


# ---------------------------------------------------------------------------------------------------
# Judge scores


@pytest.mark.parametrize("text,scores", [
    ("7 5\nAssistant 1 is right, assistant 2 is not.", (7, 5)),
    ("8, 3\nreasons", (8, 3)),
    ("Scores: 7/8 and 5/8", (7, 5)),
    ("**Scores:** [6, 2]", (6, 2)),
    ("Assistant 1: 7\nAssistant 2: 5\nThe first is correct.", (7, 5)),
    ("Assistant 1: 8/8\nAssistant 2: 3/8", (8, 3)),
    ("Assistant 1 receives a score of 6, while Assistant 2 gets 4.", (6, 4)),
    ("The scores are 7.5 and 6", (7.5, 6)),
    ("Let me compare.\n\n4 4\nBoth are fine.", (4, 4)),
    ("1. Assistant 1 is better\n2. Assistant 2 is shorter\nAssistant 1: 7 Assistant 2: 2", (7, 2)),
])
def test_judge_scores_in_the_forms_judges_write(text, scores):
    first, second, reasons = parse_scores(text)
    assert (first, second) == scores
    assert isinstance(reasons, str)


def test_judge_reasons_are_the_text_after_the_scores():
    assert parse_scores("6 3\nThe first answer runs.\nThe second does not.")[2] == "The first answer runs.\nThe second does not."


@pytest.mark.parametrize("text,problem", [
    ("", "answered nothing"),
    ("I think the first one is better.", "no pair of 1-8 scores"),
    ("9 3\nway off the scale", "outside 1-8"),
    ("0 5", "outside 1-8"),
    ("7/10 5/10", "not on the 1-8 scale"),
    ("Assistant 1 and Assistant 2 both did well", "no pair"),
    ("<|end|>def f(x): return x", "no pair"),
    ("Assistant 1: 7", "no pair"),
])
def test_malformed_judge_output_is_refused_not_guessed(text, problem):
    with pytest.raises(JudgeParseError, match=problem):
        parse_scores(text)
    verdict = read_verdict(text)
    assert verdict.error and verdict.first is None


def test_both_orders_are_averaged_and_unreadable_verdicts_are_not_ties():
    swapped = Comparison("q", "a", "b", [Verdict(7, 5, "", "7 5")], [Verdict(6, 6, "", "6 6")])
    assert swapped.scores() == (6.5, 5.5) and swapped.outcome == "win"
    position_bias = Comparison("q", "a", "b", [Verdict(8, 4, "", "")], [Verdict(8, 4, "", "")])
    assert position_bias.scores() == (6.0, 6.0) and position_bias.outcome == "tie"
    lost = Comparison("q", "a", "b", [Verdict(2, 7, "", "")])
    unreadable = Comparison("q", "a", "b", [read_verdict("no idea")], [read_verdict("")])
    half = Comparison("q", "a", "b", [read_verdict("garbage")], [Verdict(3, 5, "", "")])
    assert unreadable.outcome == "unparsed" and unreadable.scores() is None
    assert half.scores() == (5, 3) and half.outcome == "win"
    assert tally([swapped, position_bias, lost, unreadable, half]) == {"win": 2, "tie": 1, "loss": 1, "unparsed": 1}
    record = half.as_dict()
    assert record["outcome"] == "win" and [v["order"] for v in record["verdicts"]] == ["a_first", "b_first"]
    assert record["verdicts"][0]["error"]
