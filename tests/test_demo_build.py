"""The demo model build at a reduced size: deterministic, reported step by step, honest about itself."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from starchat_tui.demo.build import BuildConfig, build_demo_model

pytestmark = pytest.mark.timeout(300)

REDUCED = BuildConfig.reduced(evaluate=False)


@pytest.fixture(scope="module")
def twin_builds(tmp_path_factory):
    """The same reduced build made twice, in two folders, with the progress each reported."""
    builds = []
    for name in ("first", "second"):
        lines: list[str] = []
        folder = tmp_path_factory.mktemp(name) / "demo"
        result = build_demo_model(folder, REDUCED, version="test", progress=lines.append)
        builds.append((folder, result, lines))
    return builds


def test_the_build_is_deterministic(twin_builds):
    (first, result_a, _), (second, result_b, _) = twin_builds
    for name in ("data/train.jsonl", "data/heldout.jsonl", "tokenizer.json", "model.safetensors", "config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    meta_a = json.loads((first / "starchat_tui.json").read_text())
    meta_b = json.loads((second / "starchat_tui.json").read_text())
    assert meta_a["fingerprint"] == meta_b["fingerprint"]
    assert result_a.train_steps == result_b.train_steps > 0


def test_a_different_seed_gives_a_different_model(twin_builds, tmp_path):
    folder, _, _ = twin_builds[0]
    other = build_demo_model(tmp_path / "other", BuildConfig.reduced(evaluate=False, seed=1, epochs=0.2))
    assert (other.path / "data/train.jsonl").read_bytes() != (folder / "data/train.jsonl").read_bytes()


def test_every_step_reports_progress(twin_builds):
    _, _, lines = twin_builds[0]
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]"):
        assert any(line.startswith(step) for line in lines), step
    assert any("all" in line and "code blocks behave" in line for line in lines)
    assert any(line.startswith("step ") and "loss" in line for line in lines)  # the trainer's progress bar
    assert any(line.startswith("trained: ") for line in lines)
    assert not any(".init" in line or "saved the model" in line for line in lines[-3:])


def test_the_result_is_a_standard_chat_model_folder(twin_builds):
    folder, result, _ = twin_builds[0]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") == 0
    assert all(len(tokenizer(t, add_special_tokens=False)["input_ids"]) == 1
               for t in ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"))
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert text == "<|system|>\n<|end|>\n<|user|>\nhi<|end|>\n<|assistant|>"
    # a name's pieces keep their underscore, so each piece of a name to copy follows a different token
    words = [word for word, _ in tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str("def largest_even_value(n):")]
    assert words == ["def", "Ġlargest", "_even", "_value", "(", "n", "):"]
    for typed in ("héllo wörld __init__ x  = 1\n\tdone", "largest_even_value(nums)"):
        assert tokenizer.decode(tokenizer(typed)["input_ids"]) == typed
    rows = [json.loads(line) for line in (folder / "data/train.jsonl").read_text().splitlines()]
    assert len(rows) == REDUCED.dialogues == result.dialogues
    assert not (folder / ".init").exists()  # the starting weights are not left behind

    from starchat_tui.chat.conversation import Conversation
    from starchat_tui.engine import load_engine

    engine = load_engine(str(folder))
    conversation = Conversation()
    conversation.add("user", "hello")
    "".join(engine.stream(conversation, temperature=0, max_new_tokens=16))
    assert conversation.messages[-1]["role"] == "assistant"


def test_the_model_card_says_what_it_is(twin_builds):
    folder, result, _ = twin_builds[0]
    card = (folder / "README.md").read_text()
    assert "tiny model for trying starchat-tui, not a real assistant" in card
    assert f"{result.parameters:,} parameters" in card
    assert "generated coding dialogues" in card
    assert "| 6 templated tasks (write, complete a docstring, fix a bug) | pass@1 | **not measured** |" in card
    assert "| 6 requests in everyday words | pass@1 | **not measured** |" in card
    assert "data/heldout.jsonl" in card and "data/natural.jsonl" in card and "starchat-tui eval" in card
    assert "HumanEval" in card  # stated once, as measured by hand: the build cannot fetch its data


def test_demo_model_path_builds_once_measures_and_finds_it_after(isolated_home, starchat_cmd, cli_env, capfd):
    from starchat_tui.demo import demo_folder, demo_info, demo_model_path

    lines: list[str] = []
    folder = demo_model_path(lines.append, config=BuildConfig.reduced())
    # Progress goes to the callback only: under the chat app, anything printed would tear the screen.
    assert capfd.readouterr().out == ""
    assert folder == demo_folder() and (folder / "config.json").exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".build-")]  # staging renamed away
    assert any(line.startswith("[5/5] measuring pass@1 on 6 templated and 6 natural held-out tasks") for line in lines)
    assert any(line.startswith("out-of-scope requests: ") and "/3 declined" in line for line in lines)
    # printed at the end of the build
    assert any("pass@1 on 6 held-out templated tasks" in line and "on 6 held-out requests in everyday words" in line
               for line in lines)
    info = demo_info(folder)
    for key in ("heldout_pass_at_1", "natural_pass_at_1", "natural_syntax_errors", "natural_declined",
                "out_of_scope_declined"):
        assert 0.0 <= info[key] <= 1.0, key
    card = (folder / "README.md").read_text()
    assert f"| pass@1 | **{100 * info['heldout_pass_at_1']:.1f}%** |" in card
    assert f"| pass@1 | **{100 * info['natural_pass_at_1']:.1f}%** |" in card
    assert ".build-" not in card and str(folder) in card

    again: list[str] = []
    assert demo_model_path(again.append) == folder and again == []

    done = subprocess.run([*starchat_cmd, "demo", "--build-only"], capture_output=True, text=True, env=cli_env,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(folder)
    assert "found the demo model" in done.stderr and "pass@1" in done.stderr


def test_the_demo_model_is_resolved_above_the_engine_with_its_note(isolated_home, starchat_cmd, cli_env):
    from starchat_tui import load_engine
    from starchat_tui.demo import DEMO_NOTE, demo_model_path, resolve_model
    from starchat_tui.engine import load_engine as engine_load_engine
    from starchat_tui.errors import ModelLoadError

    folder = demo_model_path(config=BuildConfig.reduced(evaluate=False, epochs=0.2))
    notes: list[str] = []
    assert resolve_model("demo", notes.append) == resolve_model(None) == str(folder)
    assert resolve_model("some/model", notes.append) == "some/model"
    assert notes == [f"note: {DEMO_NOTE}"]
    with pytest.raises(ModelLoadError, match="resolve_model"):
        engine_load_engine("demo")  # the engine loads folders and Hub ids; it knows no demo
    assert load_engine("demo", device="cpu").model_name == "demo"  # the API resolves it

    # No -m: the demo model, with its note on stderr, even from a job whose stdin is an empty pipe.
    done = subprocess.run([*starchat_cmd, "-p", "--json", "hello", "-o", "max_new_tokens=5"], input=b"",
                          capture_output=True, env=cli_env, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["model"] == "demo"
    assert "starchat-tui: note: the demo model is tiny" in done.stderr.decode()


def test_demo_without_a_terminal_says_what_to_do(starchat_cmd, cli_env):
    done = subprocess.run([*starchat_cmd, "demo"], capture_output=True, text=True, env=cli_env, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "--build-only" in done.stderr and "Traceback" not in done.stderr


def test_demo_help_is_honest(starchat_cmd, cli_env):
    done = subprocess.run([*starchat_cmd, "demo", "--help"], capture_output=True, text=True, env=cli_env, timeout=60)
    assert done.returncode == 0
    assert "--build-only" in done.stdout and "tiny" in done.stdout


def test_the_build_needs_only_the_base_install(tmp_path):
    """`starchat-tui demo` is the README's first command: no DeepSpeed, datasets or other extras."""
    script = (
        "import sys\n"
        "for name in ('deepspeed', 'datasets', 'peft', 'trl'):\n"
        "    sys.modules[name] = None  # as if not installed\n"
        "from starchat_tui.demo.build import BuildConfig, build_demo_model\n"
        f"result = build_demo_model({str(tmp_path / 'demo')!r}, BuildConfig.reduced(evaluate=False, epochs=0.2))\n"
        "print(result.train_steps)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.strip().splitlines()[-1]) > 0


def test_demo_opens_the_chat_on_the_built_model(isolated_home, starchat_cmd, cli_env, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    from starchat_tui.demo import demo_model_path

    folder = demo_model_path(config=BuildConfig.reduced(evaluate=False, epochs=0.2))
    env = {**cli_env, "PROMPT_TOOLKIT_NO_CPR": "1", "TERM": "xterm"}
    child = pexpect.spawn(starchat_cmd[0], [*starchat_cmd[1:], "demo", "--plain"], env=env, encoding="utf-8",
                          timeout=90, dimensions=(40, 120))
    child.logfile_read = open(tmp_path / "screen.log", "a")  # noqa: SIM115 - read when the test fails
    child.expect_exact("found the demo model")
    child.expect_exact("note: the demo model is tiny")
    child.expect_exact("\x1b[?2004h")  # prompt_toolkit's prompt is ready
    child.send("hello\r")
    child.expect_exact("\x1b[?2004h")  # answered, and ready again
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    from starchat_tui.store import SessionStore

    with SessionStore() as store:
        (session,) = store.list_sessions()
        assert session.model == str(folder)  # the chat ran on the demo model's folder
