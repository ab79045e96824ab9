"""The command line end to end, as a subprocess: stdout holds only the answer, errors are one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from starchat_tui.chat.inert import make_inert
from starchat_tui.cli import COMMANDS


def run(cmd, args, env, stdin: bytes | None = None, timeout: float = 120):
    """Run the CLI; without ``stdin`` it gets /dev/null, as a script with no input would."""
    if stdin is None:
        return subprocess.run([*cmd, *args], stdin=subprocess.DEVNULL, env=env, capture_output=True, timeout=timeout)
    return subprocess.run([*cmd, *args], input=stdin, env=env, capture_output=True, timeout=timeout)


def assert_one_line_error(result, code: int, *phrases: str) -> str:
    stderr = result.stderr.decode()
    assert result.returncode == code, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("starchat-tui: error:")]
    assert len(errors) == 1, stderr
    for phrase in phrases:
        assert phrase in errors[0]
    return errors[0]


def test_help_is_fast_and_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from starchat_tui.cli import main\n"
        "for argv in [['--help']] + [[name, '--help'] for name in sys.argv[1:]]:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'textual', 'deepspeed', 'datasets') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *COMMANDS], capture_output=True, text=True, timeout=60)
    assert "HEAVY []" in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]
    assert "exit codes: 0 ok, 1 internal error" in result.stdout
    for name in COMMANDS:
        assert f"usage: starchat-tui {name}" in result.stdout


def test_print_mode_writes_only_the_answer_to_stdout(starchat_cmd, cli_env, tiny_model):
    args = ["-p", "hello", "-m", tiny_model, "-o", "temperature=0", "-o", "max_new_tokens=40"]
    plain = run(starchat_cmd, args, cli_env)
    assert plain.returncode == 0, plain.stderr.decode()
    as_json = run(starchat_cmd, [*args, "--json"], cli_env)
    data = json.loads(as_json.stdout)
    assert plain.stdout.decode() == data["reply"] + ("" if data["reply"].endswith("\n") else "\n")
    assert b"\x1b" not in plain.stdout
    assert "loading weights" in plain.stderr.decode()
    assert set(data["stats"]) >= {"prompt_tokens", "cached_tokens", "new_tokens", "ttft_s", "tokens_per_s"}
    assert data["messages"][-1] == {"role": "assistant", "content": data["reply"]}
    assert data["interrupted"] is False


def test_piped_input_is_attached_as_a_fenced_block(starchat_cmd, cli_env, tiny_model):
    code = b"def double(x):\n    return x * 2\n"
    result = run(starchat_cmd, ["--dry-run", "explain this", "-m", tiny_model, "-s", "Be brief"], cli_env, stdin=code)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == (
        "<|system|>\nBe brief<|end|>\n<|user|>\nexplain this\n\nstdin:\n```\n"
        + code.decode()
        + "```<|end|>\n<|assistant|>\n"
    )


def test_fences_inside_the_input_cannot_close_the_block(starchat_cmd, cli_env, tiny_model):
    text = b"# Notes\n```python\nprint(1)\n```\n"
    result = run(starchat_cmd, ["--dry-run", "summarise", "-m", tiny_model], cli_env, stdin=text)
    assert "stdin:\n````\n# Notes\n```python\nprint(1)\n```\n````" in result.stdout.decode()


def test_binary_input_is_refused(starchat_cmd, cli_env, tiny_model):
    result = run(starchat_cmd, ["-p", "what is this", "-m", tiny_model], cli_env, stdin=b"\x7fELF\x02\x01\x00\x00binary")
    assert_one_line_error(result, 2, "binary")
    latin1 = bytes(range(0x80, 0x100)) * 20
    result = run(starchat_cmd, ["-p", "what is this", "-m", tiny_model], cli_env, stdin=latin1)
    assert_one_line_error(result, 2, "not UTF-8")
    assert result.stdout == b""


def test_an_empty_pipe_with_a_question_is_no_input(starchat_cmd, cli_env, tiny_model):
    """A script, cron or CI job whose stdin is an empty pipe still gets its question answered."""
    args = ["-p", "hello", "-m", tiny_model, "-o", "temperature=0", "-o", "max_new_tokens=8"]
    result = run(starchat_cmd, args, cli_env, stdin=b"", timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip()
    prompt = run(starchat_cmd, ["--dry-run", "hello", "-m", tiny_model], cli_env, stdin=b"", timeout=60)
    assert prompt.stdout.decode() == "<|system|>\n<|end|>\n<|user|>\nhello<|end|>\n<|assistant|>\n"


def test_an_empty_pipe_with_a_missing_model_says_the_model_is_missing(starchat_cmd, cli_env, tmp_path):
    result = run(starchat_cmd, ["-p", "question", "-m", str(tmp_path / "missing")], cli_env, stdin=b"", timeout=60)
    assert_one_line_error(result, 3, "does not exist", "-m PATH")


def test_an_empty_pipe_and_no_question_is_an_error_not_a_hang(starchat_cmd, cli_env, tiny_model):
    result = run(starchat_cmd, ["-p", "-m", tiny_model], cli_env, stdin=b"", timeout=60)
    assert_one_line_error(result, 2, "nothing to ask")
    named = run(starchat_cmd, ["review", "-", "-m", tiny_model], cli_env, stdin=b"", timeout=60)
    assert_one_line_error(named, 2, "stdin is an empty pipe", "</dev/null")


def test_a_closed_stdin_is_no_input(starchat_cmd, cli_env, tiny_model):
    code = "import os, subprocess, sys; os.close(0); sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    result = subprocess.run([sys.executable, "-c", code, *starchat_cmd, "--dry-run", "hi", "-m", tiny_model],
                            env=cli_env, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().endswith("hi<|end|>\n<|assistant|>\n")
    nothing = subprocess.run([sys.executable, "-c", code, *starchat_cmd, "-p", "-m", tiny_model],
                             env=cli_env, capture_output=True, timeout=60)
    assert_one_line_error(nothing, 2, "nothing to ask")


def test_huge_input_is_cut_and_the_cut_is_reported(starchat_cmd, cli_env, tiny_model):
    huge = "".join(f"value_{i} = {i} * {i}\n" for i in range(20000)).encode()
    result = run(starchat_cmd, ["--dry-run", "explain", "-m", tiny_model, "-o", "max_new_tokens=100"], cli_env, stdin=huge)
    assert result.returncode == 0, result.stderr.decode()
    stderr = result.stderr.decode()
    assert "stdin: input cut to fit the 1024-token context" in stderr
    assert "cut" in result.stdout.decode().split("```")[0], "the prompt itself says the input was cut"
    from transformers import AutoTokenizer

    tokens = len(AutoTokenizer.from_pretrained(tiny_model)(result.stdout.decode())["input_ids"])
    assert 900 <= tokens <= 1024 - 100
    assert result.stdout.decode().startswith("<|system|>\n<|end|>\n<|user|>\nexplain\n\nstdin (cut: the last")


def test_files_given_with_f_go_with_the_question(starchat_cmd, cli_env, tiny_model, tmp_path):
    source = tmp_path / "calc.py"
    source.write_text("def div(a, b):\n    return a / b\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("b is never zero\n")
    args = ["-p", "why does this fail?", "-f", str(source), "--file", str(notes), "--dry-run", "-m", tiny_model]
    result = run(starchat_cmd, args, cli_env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == (
        f"<|system|>\n<|end|>\n<|user|>\nwhy does this fail?\n\n{source}:\n```python\ndef div(a, b):\n"
        f"    return a / b\n```\n\n{notes}:\n```text\nb is never zero\n```<|end|>\n<|assistant|>\n"
    )
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01binary")
    assert_one_line_error(run(starchat_cmd, ["-p", "what", "-f", str(blob), "-m", tiny_model], cli_env), 2, "binary")
    huge = tmp_path / "huge.txt"
    huge.write_text("x" * (300 * 1024))
    assert_one_line_error(run(starchat_cmd, ["-p", "what", "-f", str(huge), "-m", tiny_model], cli_env), 2,
                          "over the 256 KiB limit")
    assert_one_line_error(run(starchat_cmd, ["-p", "what", "-f", "-", "-m", tiny_model], cli_env, stdin=b"x\n"), 2,
                          "pipe the input in without -f")


def test_review_files_and_stdin(starchat_cmd, cli_env, tiny_model, tmp_path):
    source = tmp_path / "calc.py"
    source.write_text("def div(a, b):\n    return a / b\n")
    result = run(starchat_cmd, ["review", str(source), "-", "--dry-run", "-m", tiny_model], cli_env, stdin=b"echo hi\n")
    prompt = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "Review the following code" in prompt
    assert f"{source}:\n```python\ndef div(a, b):" in prompt
    assert "stdin:\n```\necho hi\n```" in prompt
    custom = run(starchat_cmd, ["review", str(source), "--prompt", "Find the bug.", "--dry-run", "-m", tiny_model], cli_env)
    assert custom.stdout.decode().startswith("<|system|>\n<|end|>\n<|user|>\nFind the bug.\n\n")
    missing = run(starchat_cmd, ["review", str(tmp_path / "nope.py"), "-m", tiny_model], cli_env)
    assert_one_line_error(missing, 2, "no such file")
    folder = run(starchat_cmd, ["review", str(tmp_path), "-m", tiny_model], cli_env)
    assert_one_line_error(folder, 2, "is a folder")


def test_review_prints_an_answer(starchat_cmd, cli_env, tiny_model, tmp_path):
    source = tmp_path / "calc.py"
    source.write_text("def div(a, b):\n    return a / b\n")
    result = run(starchat_cmd, ["review", str(source), "-m", tiny_model, "-o", "max_new_tokens=20"], cli_env)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.strip()


@pytest.mark.parametrize(
    "args, code, phrase",
    [
        (["-p", "hi", "-m", "no-such-org/no-such-model"], 3, "not in the local Hugging Face cache"),
        (["-p", "hi", "-m", "./no/such/folder"], 3, "does not exist"),
        (["-p", "hi", "-o", "tempreture=1"], 2, "did you mean 'temperature'"),
        (["-p", "hi", "-o", "novalue"], 2, "expected KEY=VALUE"),
        (["-p"], 2, "nothing to ask"),
        (["hi", "--json"], 2, "go with -p"),
        (["hi"], 2, "use -p"),
    ],
)
def test_bad_input_gets_one_line_and_a_documented_exit_code(starchat_cmd, cli_env, tiny_model, args, code, phrase):
    args = [tiny_model if a == "TINY" else a for a in args]
    result = subprocess.run([*starchat_cmd, *args], stdin=subprocess.DEVNULL, env=cli_env, capture_output=True, timeout=120)
    line = assert_one_line_error(result, code, phrase)
    if code == 3:
        assert "-m PATH" in line and "demo" in line


def test_offline_message_without_hf_offline_fails_fast(starchat_cmd, cli_env):
    """No network here: asking the Hub must fail in seconds, not after minutes of retries."""
    env = {k: v for k, v in cli_env.items() if k != "HF_HUB_OFFLINE"}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"  # the discard port: refused at once, like an offline machine
    started = time.monotonic()
    result = subprocess.run([*starchat_cmd, "-p", "hi", "-m", "someone/some-model"], stdin=subprocess.DEVNULL,
                            env=env, capture_output=True, timeout=120)
    assert time.monotonic() - started < 30
    assert_one_line_error(result, 3, "the Hub cannot be reached", "-m PATH")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="shrinks a pipe (F_SETPIPE_SZ) and reads /proc: Linux-only")
def test_ctrl_c_stops_the_answer_and_exits_130(starchat_cmd, cli_env, random_model):
    """The signal goes in while the answer is provably still being written: stdout is a one-page pipe
    that this test leaves unread, the 900-token answer (about 8 KB) is longer than that, and the signal
    waits until starchat-tui sits blocked writing into the full pipe, however loaded the machine is."""
    import fcntl

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    process = subprocess.Popen(
        [*starchat_cmd, "-p", "talk", "-m", random_model, "-o", "max_new_tokens=900", "-o", "temperature=0"],
        stdin=subprocess.DEVNULL, stdout=write_end, stderr=subprocess.PIPE, env=cli_env,
    )
    os.close(write_end)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and not _blocked_writing_a_pipe(process.pid):
            time.sleep(0.05)
        assert process.poll() is None, "the answer must still be streaming into the full pipe"
        process.send_signal(signal.SIGINT)
        with os.fdopen(read_end, "rb") as reader:
            read_end = -1
            out = reader.read()
        err = process.stderr.read()
        assert process.wait(timeout=60) == 130, err.decode()
    finally:
        if read_end >= 0:
            os.close(read_end)
        if process.poll() is None:
            process.kill()
            process.wait()
    assert out.strip(), "the partial answer is printed"
    assert b"Traceback" not in err


def _blocked_writing_a_pipe(pid: int) -> bool:
    """Whether the process's main thread sleeps in the kernel's pipe write (pipe_write, anon_pipe_write)."""
    try:
        with open(f"/proc/{pid}/wchan") as handle:
            return "pipe_write" in handle.read()
    except OSError:
        return False


def test_settings_precedence_flag_env_file(starchat_cmd, cli_env, tiny_model, isolated_home):
    (isolated_home / "config" / "config.toml").write_text(f'system = "from file"\nmodel = "{tiny_model}"\n')

    def system_seen(extra_args, extra_env):
        result = run(starchat_cmd, ["--dry-run", "q", *extra_args], {**cli_env, **extra_env})
        assert result.returncode == 0, result.stderr.decode()
        return result.stdout.decode().split("<|end|>")[0].removeprefix("<|system|>\n")

    assert system_seen([], {}) == "from file"
    assert system_seen([], {"STARCHAT_TUI_SYSTEM": "from env"}) == "from env"
    assert system_seen(["-s", "from flag"], {"STARCHAT_TUI_SYSTEM": "from env"}) == "from flag"


def test_a_broken_config_file_is_a_usage_error(starchat_cmd, cli_env, isolated_home):
    (isolated_home / "config" / "config.toml").write_text("model = [unclosed\n")
    result = run(starchat_cmd, ["--dry-run", "q"], cli_env)
    assert_one_line_error(result, 2, "config.toml: not valid TOML")


def test_paths_and_version(starchat_cmd, cli_env, isolated_home):
    result = run(starchat_cmd, ["paths"], cli_env)
    assert result.returncode == 0
    assert f"config       {isolated_home / 'config'}" in result.stdout.decode()
    version = run(starchat_cmd, ["--version"], cli_env)
    assert version.stdout.decode().startswith("starchat-tui ")


def test_model_output_is_made_inert():
    assert make_inert("ok\x1b[2J\x07done\n\ttab") == "ok␛[2J^Gdone\n\ttab"
    assert make_inert("\x9b31m") == "\\x9b31m"


def test_eval_takes_every_model_flag(starchat_cmd, cli_env, tiny_model, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"task_id": "t/0", "prompt": "def f():\n", "entry_point": "f",
                                 "test": "def check(candidate):\n    assert candidate() is None\n"}) + "\n")
    args = ["eval", "-m", tiny_model, "--tasks", str(tasks), "--allow-unsafe", "--device", "cpu"]
    assert_one_line_error(run(starchat_cmd, [*args, "--quantize", "8bit"], cli_env), 3, "--quantize 8bit needs a CUDA GPU")
    assert_one_line_error(run(starchat_cmd, [*args, "--dtype", "float7"], cli_env), 2, "--dtype float7")


def test_debug_anywhere_shows_the_traceback(starchat_cmd, cli_env):
    for args in (["--debug", "history", "show", "nope"], ["history", "show", "nope", "--debug"]):
        result = run(starchat_cmd, args, cli_env)
        assert result.returncode != 0 and "Traceback" in result.stderr.decode(), args
    assert_one_line_error(run(starchat_cmd, ["history", "show", "nope"], cli_env), 2, "no session 'nope'")
