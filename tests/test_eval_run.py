"""`starchat-tui eval` end to end: real answers checked in the real sandbox, a real (tiny) model, the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from starchat_tui.eval.runner import Checker, evaluate
from starchat_tui.eval.tasks import EvalTask

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox backends are Linux-only"),
    pytest.mark.timeout(180),
]

DOUBLE = EvalTask(
    "t/double", 'def double(x):\n    """Return x times two."""\n',
    "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-3) == -6\n", "double",
)


def write_tasks(path, count: int = 3):
    rows = []
    for index in range(count):
        rows.append({"task_id": f"t/{index}", "prompt": DOUBLE.prompt, "test": DOUBLE.test, "entry_point": "double"})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def checker():
    checker = Checker(timeout=2.0)
    yield checker
    checker.close()


def test_a_right_answer_passes_in_the_sandbox(checker):
    sample = checker.check(DOUBLE, "Here you go:\n```python\ndef double(x):\n    return 2 * x\n```\nIt doubles x.")
    assert sample.passed and sample.result == "passed"
    assert sample.code == "def double(x):\n    return 2 * x\n"


def test_a_body_that_continues_the_prompt_passes(checker):
    assert checker.check(DOUBLE, "```python\n    return x + x\n```").passed


def test_wrong_missing_and_endless_answers_fail_with_the_reason(checker):
    wrong = checker.check(DOUBLE, "```python\ndef double(x):\n    return x + 2\n```")
    assert not wrong.passed and wrong.result.startswith("AssertionError")
    missing = checker.check(DOUBLE, "Doubling means multiplying by two.")
    assert (missing.passed, missing.result, missing.code) == (False, "no code block", None)
    endless = checker.check(DOUBLE, "```python\ndef double(x):\n    while True:\n        pass\n```")
    assert not endless.passed and endless.result == "timed out"
    escape = checker.check(DOUBLE, "```python\nimport os\ndef double(x):\n    return len(os.listdir('/root'))\n```")
    assert not escape.passed  # the sandbox hides the home folder: the answer cannot even look


def test_evaluate_with_a_real_model_reports_every_sample(tiny_model):
    from starchat_tui.engine import load_engine

    engine = load_engine(tiny_model)
    tasks = [DOUBLE, EvalTask("t/inc", "def inc(x):\n", "def check(candidate):\n    assert candidate(1) == 2\n", "inc")]
    seen = []
    report = evaluate(engine, tasks, samples=2, options={"max_new_tokens": 24}, timeout=5,
                      on_result=lambda result, done, total: seen.append((result.task_id, done, total)))
    assert seen == [("t/double", 1, 2), ("t/inc", 2, 2)]
    assert report.complete and [r.n for r in report.results] == [2, 2]
    assert set(report.pass_at) == {1, 2}
    correct = sum(r.correct for r in report.results)
    assert report.pass_at[1] == pytest.approx(correct / 4)
    for result in report.results:
        for sample in result.samples:
            assert sample.completion == sample.completion.strip("\x00")
            assert sample.passed == (sample.result == "passed")
    assert "pass@1" in report.summary()


def test_a_tasks_samples_are_one_batched_generate_on_a_local_model(tiny_model):
    from starchat_tui.engine import load_engine

    engine = load_engine(tiny_model)
    batches = []
    generate = engine.model.generate

    def recorded(*args, **kwargs):  # transformers' own generate, with its batch size noted
        output = generate(*args, **kwargs)
        batches.append(output.shape[0])
        return output

    engine.model.generate = recorded
    tasks = [DOUBLE, EvalTask("t/inc", "def inc(x):\n", "def check(candidate):\n    assert candidate(1) == 2\n", "inc")]
    report = evaluate(engine, tasks, samples=3, options={"max_new_tokens": 24}, timeout=5)
    assert batches == [3, 3]
    assert [r.n for r in report.results] == [3, 3]


def run_cli(starchat_cmd, env, *args, timeout=150):
    return subprocess.run([*starchat_cmd, "eval", *args], capture_output=True, text=True, env=env, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_eval_command_writes_one_line_per_task(starchat_cmd, cli_env, tiny_model, tmp_path):
    tasks = write_tasks(tmp_path / "tasks.jsonl")
    out = tmp_path / "results.jsonl"
    done = run_cli(starchat_cmd, cli_env, "--model", tiny_model, "--tasks", str(tasks), "--samples", "2",
                   "--out", str(out), "-o", "max_new_tokens=24")
    assert done.returncode == 0, done.stderr
    assert "pass@1" in done.stdout and "pass@2" in done.stdout and "3 of 3" in done.stdout
    assert "eval [" in done.stderr  # the progress bar
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["task_id"] for line in lines] == ["t/0", "t/1", "t/2"]
    assert all(isinstance(line["passed"], bool) and line["n"] == 2 and len(line["samples"]) == 2 for line in lines)


@pytest.mark.parametrize("args,phrase", [
    (["--tasks", "missing.jsonl"], "no such tasks file"),
    ([], "give --tasks FILE.jsonl"),
    (["--tasks", "TASKS", "--samples", "0"], "--samples must be at least 1"),
    (["--tasks", "TASKS", "--samples", "2", "-k", "5"], "pass@5 needs --samples 5"),
    (["--tasks", "TASKS", "--out", "/no/such/folder/out.jsonl"], "does not exist"),
    (["--judge", "demo"], "--judge needs --compare A B and --prompts FILE"),
    (["--compare", "a", "b"], "go with --judge"),
])
def test_bad_input_is_one_line_and_exit_2(starchat_cmd, cli_env, tmp_path, args, phrase):
    tasks = write_tasks(tmp_path / "tasks.jsonl")
    args = [str(tasks) if a == "TASKS" else a for a in args]
    done = run_cli(starchat_cmd, cli_env, *args, timeout=60)
    assert done.returncode == 2, done.stderr
    assert phrase in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_no_sandbox_means_no_model_code_runs(starchat_cmd, cli_env, tmp_path):
    env = {**cli_env, "STARCHAT_TUI_SANDBOX_BACKEND": "none"}
    done = run_cli(starchat_cmd, env, "--tasks", str(write_tasks(tmp_path / "t.jsonl")), timeout=60)
    assert done.returncode == 2
    assert "no sandbox to run model code in" in done.stderr and "--allow-unsafe" in done.stderr


def test_judge_command_counts_unreadable_verdicts_apart(starchat_cmd, cli_env, tiny_model, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Reverse a string in Python."}) + "\n"
                       + json.dumps({"prompt": "hello"}) + "\n")
    saved = tmp_path / "a.jsonl"
    saved.write_text(json.dumps({"prompt": "Reverse a string in Python.", "answer": "Use text[::-1]."}) + "\n"
                     + json.dumps({"prompt": "hello", "answer": "Hi!"}) + "\n")
    out = tmp_path / "judged.jsonl"
    done = run_cli(starchat_cmd, cli_env, "--judge", tiny_model, "--compare", str(saved), tiny_model,
                   "--prompts", str(prompts), "--out", str(out), "-o", "max_new_tokens=20", "--single-order")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["prompt"] for row in rows] == ["Reverse a string in Python.", "hello"]
    assert rows[0]["answer_a"] == "Use text[::-1]." and rows[0]["answer_b"]  # B answered by the model
    # The tiny judge writes no scores: every verdict is unreadable and says why, and none becomes a tie.
    for row in rows:
        assert row["outcome"] == "unparsed" and row["verdicts"][0]["error"]
    assert "0 wins, 0 ties, 0 losses; 2 unreadable verdicts" in done.stdout


def test_judge_refuses_answer_files_that_miss_a_prompt(starchat_cmd, cli_env, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("first question\nsecond question\n")
    saved = tmp_path / "a.jsonl"
    saved.write_text(json.dumps({"prompt": "first question", "answer": "x"}) + "\n")
    done = run_cli(starchat_cmd, cli_env, "--judge", "demo", "--compare", str(saved), str(saved),
                   "--prompts", str(prompts), timeout=60)
    assert done.returncode == 2 and "no answer for 1 prompt(s), the first: 'second question'" in done.stderr


def test_ctrl_c_keeps_the_finished_tasks(starchat_cmd, cli_env, random_model, tmp_path):
    """An untrained model rambles to its token limit. The signal waits for the first finished task, and
    goes in while most tasks provably remain: 39 answers of 400 tokens, tens of seconds of work."""
    import signal
    import time

    total = 40
    tasks = write_tasks(tmp_path / "tasks.jsonl", count=total)
    out = tmp_path / "results.jsonl"
    process = subprocess.Popen(
        [*starchat_cmd, "eval", "--model", random_model, "--tasks", str(tasks), "--out", str(out),
         "-o", "max_new_tokens=400"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline and process.poll() is None:
            done = out.read_text().count("\n") if out.exists() else 0
            if done >= 1:
                break
            time.sleep(0.05)
        assert 1 <= done < total and process.poll() is None, (done, process.poll())
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert done <= len(lines) < total
    assert [line["task_id"] for line in lines] == [f"t/{i}" for i in range(len(lines))]
    assert f"{len(lines)} of {total}" in stdout and "pass@1" in stdout
    assert "interrupted" in stderr and "Traceback" not in stderr
