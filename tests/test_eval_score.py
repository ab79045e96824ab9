"""`eval --score`: answers written elsewhere, checked in the real sandbox, with no model (and no torch) loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from starchat_tui.errors import UsageError
from starchat_tui.eval.score import load_samples
from starchat_tui.eval.tasks import EvalTask, write_tasks

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox backends are Linux-only"),
    pytest.mark.timeout(120),
]

DOUBLE = EvalTask("t/double", "from typing import List\n\n\ndef double(xs: List[int]) -> List[int]:\n"
                  '    """Every number times two."""\n',
                  "def check(candidate):\n    assert candidate([1, -3]) == [2, -6]\n", "double")
NEGATE = EvalTask("t/negate", "def negate(x):\n", "def check(candidate):\n    assert candidate(4) == -4\n", "negate")


def write_rows(path, rows):
    path.write_text("".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows))
    return path


@pytest.mark.parametrize("row,message", [
    ("{not json", r"samples.jsonl:2: not valid JSON .*one sample object"),
    ('["a list"]', r"samples.jsonl:2: expected a JSON object with task_id and completion or answer"),
    ({"completion": "x"}, r":2: no task_id"),
    ({"task_id": "t/other", "completion": "x"}, r":2: task_id 't/other' is not in the tasks file; give the --tasks file"),
    ({"task_id": "t/negate"}, r":2: neither completion nor answer .*give one of \"completion\""),
    ({"task_id": "t/negate", "completion": "x", "answer": "y"}, r":2: both completion and answer"),
])
def test_bad_sample_rows_name_the_line_and_the_fix(tmp_path, row, message):
    path = write_rows(tmp_path / "samples.jsonl", [{"task_id": "t/negate", "completion": "    return -x\n"}, row])
    with pytest.raises(UsageError, match=message):
        load_samples(path, [DOUBLE, NEGATE])


def test_missing_and_empty_sample_files(tmp_path):
    with pytest.raises(UsageError, match="no such samples file"):
        load_samples(tmp_path / "nope.jsonl", [NEGATE])
    with pytest.raises(UsageError, match="no samples in it"):
        load_samples(write_rows(tmp_path / "empty.jsonl", [""]), [NEGATE])


SCORE_AND_CHECK_IMPORTS = (
    "import sys\n"
    "from starchat_tui.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
    "print('HEAVY', heavy, 'EXIT', code)\n"
)


def test_score_checks_both_forms_over_every_sample_without_loading_torch(cli_env, tmp_path):
    tasks = write_tasks([DOUBLE, NEGATE], tmp_path / "tasks.jsonl")
    # A task's samples may be anywhere in the file; completions continue the prompt (the List import
    # comes from the prompt), answers are chat replies whose code block is tested.
    samples = write_rows(tmp_path / "samples.jsonl", [
        {"task_id": "t/negate", "answer": "Sure:\n```python\ndef negate(x):\n    return -x\n```"},
        {"task_id": "t/double", "completion": "    return [2 * x for x in xs]\n"},
        {"task_id": "t/negate", "completion": "    return x\n"},
        {"task_id": "t/double", "completion": "    return xs\n"},
        {"task_id": "t/negate", "answer": "Negating means multiplying by minus one."},
        {"task_id": "t/double", "answer": "```python\ndef double(xs):\n    return [x + x for x in xs]\n```"},
    ])
    out = tmp_path / "results.jsonl"
    done = subprocess.run([sys.executable, "-c", SCORE_AND_CHECK_IMPORTS, "eval", "--tasks", str(tasks),
                           "--score", str(samples), "--out", str(out), "-k", "1", "-k", "3"],
                          capture_output=True, text=True, env=cli_env, timeout=90, stdin=subprocess.DEVNULL)
    assert "HEAVY [] EXIT 0" in done.stdout, done.stdout + done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["task_id"], r["passed"], r["n"], r["correct"]) for r in rows] == [("t/double", True, 3, 2), ("t/negate", True, 3, 1)]
    negate = rows[1]["samples"]
    assert [s["passed"] for s in negate] == [True, False, False]
    assert negate[2]["result"] == "no code block"
    assert negate[1]["result"].startswith("AssertionError")
    # pass@1 = mean(2/3, 1/3); pass@3 = 1 for both tasks.
    assert "pass@1    50.0%" in done.stdout and "pass@3    100.0%" in done.stdout
    assert "samples   " + str(samples) in done.stdout and "2 of 2" in done.stdout


def run_cli(starchat_cmd, env, *args):
    return subprocess.run([*starchat_cmd, "eval", *args], capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("rows,extra,phrase", [
    (None, [], "no such samples file"),
    (['{"task_id": "t/negate", "completion": "    return -x\\n"}', "{oops"], [], "samples.jsonl:2: not valid JSON"),
    ([{"task_id": "HumanEval/0", "completion": "    pass\n"}], [], "task_id 'HumanEval/0' is not in the tasks file"),
    ([{"task_id": "t/negate", "output": "-x"}], [], ":1: neither completion nor answer"),
    ([{"task_id": "t/negate", "completion": "    return -x\n"}], ["-k", "2"], "pass@2 needs at least 2 samples of every task, and t/negate has 1"),
    ([{"task_id": "t/negate", "completion": "    return -x\n"}], ["--model", "demo"], "--model has nothing to do"),
    ([{"task_id": "t/negate", "completion": "    return -x\n"}], ["--concurrency", "0"], "--concurrency must be at least 1"),
])
def test_bad_score_input_is_one_line_and_exit_2(starchat_cmd, cli_env, tmp_path, rows, extra, phrase):
    tasks = write_tasks([DOUBLE, NEGATE], tmp_path / "tasks.jsonl")
    samples = tmp_path / "samples.jsonl"
    if rows is not None:
        write_rows(samples, rows)
    done = run_cli(starchat_cmd, cli_env, "--tasks", str(tasks), "--score", str(samples), *extra)
    assert done.returncode == 2, done.stderr
    assert phrase in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_score_refuses_to_run_answers_without_a_sandbox(starchat_cmd, cli_env, tmp_path):
    tasks = write_tasks([NEGATE], tmp_path / "tasks.jsonl")
    samples = write_rows(tmp_path / "samples.jsonl", [{"task_id": "t/negate", "completion": "    return -x\n"}])
    done = run_cli(starchat_cmd, {**cli_env, "STARCHAT_TUI_SANDBOX_BACKEND": "none"},
                   "--tasks", str(tasks), "--score", str(samples))
    assert done.returncode == 2 and "no sandbox to run model code in" in done.stderr


def test_only_the_tasks_given_are_scored_and_every_sample_counts():
    from starchat_tui.eval.score import Submission, score

    submissions = [Submission("t/double", "    return [x * 2 for x in xs]\n", True),
                   Submission("t/negate", "    return -x\n", True),
                   Submission("t/negate", "    return x\n", True),
                   Submission("t/negate", "    return 0 - x\n", True)]
    seen = []
    report = score([NEGATE], submissions, on_result=lambda result, done, total: seen.append((done, total)))
    outcomes = [(r.task_id, r.n, r.correct) for r in report.results]
    assert outcomes == [("t/negate", 3, 2)], [r.as_dict() for r in report.results]  # t/double left out
    assert seen == [(1, 1)] and report.complete
    assert report.pass_at == {1: pytest.approx(2 / 3), 3: 1.0}
    # Uneven sample counts: k goes up to the fewest (1), and every sample of every task counts.
    both = score([DOUBLE, NEGATE], submissions)
    assert [(r.n, r.correct) for r in both.results] == [(1, 1), (3, 2)], [r.as_dict() for r in both.results]
    assert both.pass_at == {1: pytest.approx((1 + 2 / 3) / 2)}
