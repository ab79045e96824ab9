"""Training runs end to end on a tiny real model: it learns, saves a folder that chats, resumes after a kill."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from starchat_tui.chat.template import CHAT_TEMPLATE, END_TOKEN, render_for_generation
from starchat_tui.cli import main as cli_main
from starchat_tui.training.config import parse_invocation
from starchat_tui.training.progress import ProgressPrinter
from starchat_tui.training.trainer import run_training

PING = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": "pong! The server is up."}]
OTHER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What does len do?"},
         {"role": "assistant", "content": "len(x) counts the items in x."}]


def write_data(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps({"messages": r} if isinstance(r, list) else r) + "\n" for r in rows))
    return path


def greedy_reply(folder, messages) -> str:
    """The model's greedy reply to the prompt the engine feeds (the whole assistant header)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    prompt = render_for_generation(messages)
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    out = model.generate(ids, max_new_tokens=16, do_sample=False)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """A short real run: 30 steps on one exchange, packed, saved; returns (output folder, stderr)."""
    folder = tmp_path_factory.mktemp("run")
    data = write_data(folder / "d.jsonl", [PING] * 8 + [OTHER])
    held_out = write_data(folder / "eval.jsonl", [OTHER, PING])
    stream, events = io.StringIO(), []
    printer = ProgressPrinter(stream)  # what `starchat-tui train` draws in a log file

    def on_progress(event):
        events.append(event)
        printer(event)

    config = parse_invocation([
        "--model_name_or_path", tiny_model, "--dataset_name", str(data), "--output_dir", str(folder / "out"),
        "--max_steps", "30", "--learning_rate", "3e-3", "--per_device_train_batch_size", "2",
        "--logging_steps", "10", "--save_steps", "15", "--max_length", "64",
        "--eval_dataset_name", str(held_out), "--eval_strategy", "steps", "--eval_steps", "15",
    ]).config
    return run_training(config, on_progress=on_progress), SimpleNamespace(text=stream.getvalue(), events=events)


def test_it_learns_the_reply(trained, tiny_model):
    folder, _ = trained
    assert not greedy_reply(tiny_model, PING[:1]).startswith("pong!")
    assert greedy_reply(folder, PING[:1]).startswith("pong! The")


def test_saved_folder_is_a_standard_chat_model(trained):
    folder, _ = trained
    config = json.loads((folder / "config.json").read_text())
    generation = json.loads((folder / "generation_config.json").read_text())
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["use_cache"] is True
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    end = tokenizer.convert_tokens_to_ids(END_TOKEN)
    assert generation["eos_token_id"] == [end, tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    assert generation["use_cache"] is True and generation["pad_token_id"] != end
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert tokenizer.pad_token != END_TOKEN
    assert "chat_template" in tokenizer_config or (folder / "chat_template.jinja").is_file()
    assert json.loads((folder / "dialogue_template.json").read_text())["end_token"] == END_TOKEN
    assert f"starchat-tui -m {folder}" in (folder / "README.md").read_text()
    assert sorted(p.name for p in folder.glob("checkpoint-*")) == ["checkpoint-15", "checkpoint-30"]


def test_plain_transformers_pipeline_chats_with_it(trained):
    from transformers import pipeline

    folder, _ = trained
    chat = pipeline("text-generation", str(folder))
    out = chat([{"role": "user", "content": "ping"}], max_new_tokens=8, do_sample=False)
    reply = out[0]["generated_text"][-1]
    assert reply["role"] == "assistant" and isinstance(reply["content"], str)


def test_it_chats_through_the_engine(trained):
    from starchat_tui import Conversation, load_engine

    folder, _ = trained
    engine = load_engine(str(folder), device="cpu")
    conversation = Conversation()
    conversation.add("user", "ping")
    chunks = list(engine.stream(conversation, temperature=0, max_new_tokens=16))
    assert "".join(chunks).strip()
    assert conversation.messages[-1]["role"] == "assistant"
    assert conversation.messages[-1]["content"] == "".join(chunks)


def test_progress_reaches_the_callback(trained):
    folder, run = trained
    kinds = [event.kind for event in run.events]
    assert kinds.count("step") == 30 and kinds.count("checkpoint") == 2 and kinds.count("eval") == 2
    assert kinds[-2:] == ["end", "saved"] and run.events[-1].path == str(folder)
    logged = [event for event in run.events if event.kind == "log"]
    assert [event.step for event in logged] == [10, 20, 30] and all(event.loss > 0 for event in logged)
    assert any(event.kind == "note" and event.text.startswith("data: 9 dialogues") for event in run.events)


def test_progress_and_report_go_to_stderr(trained):
    stderr = trained[1].text
    assert "data: 9 dialogues from 9 rows" in stderr
    assert "% masked" in stderr and "% full" in stderr
    final = [line for line in stderr.splitlines() if line.startswith("step 30/30")]
    assert final and "loss " in final[-1] and "tok/s" in final[-1] and "ETA" in final[-1]
    assert "saved checkpoint-15" in stderr
    assert "eval loss " in stderr and " at step 15" in stderr and " at step 30" in stderr
    assert "chat with it: starchat-tui -m" in stderr


def test_invalid_data_exits_2_naming_file_and_line(tiny_model, tmp_path, capsys):
    data = write_data(tmp_path / "d.jsonl", [PING, {"messages": [{"role": "robot", "content": "x"}]}, PING])
    code = cli_main(["train", "--model_name_or_path", tiny_model, "--dataset_name", str(data),
                     "--output_dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{data}:2: message 1: unknown role 'robot'" in err
    assert "--skip-invalid" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_inspect_shows_masked_text_and_statistics(tiny_model, tmp_path, capsys):
    data = write_data(tmp_path / "d.jsonl", [OTHER, {"messages": []}, PING])
    argv = ["train", "--inspect", "--model_name_or_path", tiny_model, "--dataset_name", str(data),
            "--output_dir", str(tmp_path / "out"), "--inspect-examples", "1"]
    assert cli_main(argv) == 2  # the bad row stops --inspect too
    capsys.readouterr()
    assert cli_main(argv + ["--skip-invalid"]) == 0
    out = capsys.readouterr().out
    assert "2 dialogues from 3 rows, 1 invalid rows skipped" in out
    assert f"── example 1 · {data}:1 ·" in out and "example 2" not in out
    assert ("⟦<|system|>\nBe brief.<|end|>\n<|user|>\nWhat does len do?<|end|>\n<|assistant|>\n⟧"
            "len(x) counts the items in x.<|end|>⟦\n⟧") in out
    assert "masked" in out and "packing" in out and "padding waste" in out
    assert not (tmp_path / "out").exists()


def test_a_missing_model_exits_3(tmp_path, capsys):
    data = write_data(tmp_path / "d.jsonl", [PING])
    code = cli_main(["train", "--model_name_or_path", str(tmp_path / "no-model"), "--dataset_name", str(data),
                     "--output_dir", str(tmp_path / "out")])
    assert code == 3
    assert "could not load model" in capsys.readouterr().err


def test_lora_trains_adapters_and_saves_a_merged_model(tiny_model, tmp_path):
    from safetensors import safe_open

    data = write_data(tmp_path / "d.jsonl", [PING] * 4)
    config = parse_invocation([
        "--model_name_or_path", tiny_model, "--dataset_name", str(data), "--output_dir", str(tmp_path / "out"),
        "--use_peft", "--lora_r", "4", "--max_steps", "3", "--max_length", "64", "--save_strategy", "no",
    ]).config
    folder = run_training(config)
    with safe_open(folder / "model.safetensors", "pt") as weights:
        names = list(weights.keys())
    assert names and not any("lora" in name for name in names)
    assert greedy_reply(folder, PING[:1]) is not None  # loads as a plain model


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_result(tiny_model, tmp_path, cli_env, starchat_cmd):
    from safetensors.torch import load_file

    data = write_data(tmp_path / "d.jsonl", [PING, OTHER, PING, OTHER])

    def argv(out):
        return ["--model_name_or_path", tiny_model, "--dataset_name", str(data), "--output_dir", str(out),
                "--max_steps", "40", "--save_steps", "4", "--per_device_train_batch_size", "1",
                "--packing", "false", "--max_length", "64", "--learning_rate", "1e-3", "--logging_steps", "1"]

    killed = tmp_path / "killed"
    process = subprocess.Popen([*starchat_cmd, "train", *argv(killed)], env=cli_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint-4" / "trainer_state.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "model.safetensors").exists()  # it never got to the end

    # The uninterrupted reference runs in a process of its own too, under the same thread settings.
    log = (tmp_path / "reference.log").open("w")
    reference = subprocess.Popen([*starchat_cmd, "train", *argv(tmp_path / "reference")], env=cli_env,
                                 stdout=subprocess.DEVNULL, stderr=log)
    resumed = subprocess.run([*starchat_cmd, "train", *argv(killed)], env=cli_env, capture_output=True, text=True)
    assert reference.wait() == 0, (tmp_path / "reference.log").read_text()
    log.close()
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr and "checkpoint-" in resumed.stderr

    expected = load_file(tmp_path / "reference" / "model.safetensors")
    actual = load_file(killed / "model.safetensors")
    assert expected.keys() == actual.keys()
    import torch

    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], msg=name)


def test_a_half_written_checkpoint_is_passed_over(tmp_path):
    from starchat_tui.training.checkpoints import latest_complete, resolve_resume

    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4}')
    (tmp_path / "checkpoint-8").mkdir()
    (tmp_path / "checkpoint-8" / "trainer_state.json").write_text('{"global_st')  # killed mid-write
    (tmp_path / "checkpoint-12").mkdir()  # killed before the state file
    assert latest_complete(tmp_path) == tmp_path / "checkpoint-4"
    assert resolve_resume(None, tmp_path) == tmp_path / "checkpoint-4"
    assert resolve_resume(False, tmp_path) is None
    assert resolve_resume(None, tmp_path / "empty") is None
    from starchat_tui.errors import UsageError

    with pytest.raises(UsageError, match="no complete checkpoint"):
        resolve_resume(True, tmp_path / "empty")
    with pytest.raises(UsageError, match="not a complete checkpoint"):
        resolve_resume(str(tmp_path / "checkpoint-8"), tmp_path)


def test_help_is_fast_and_imports_nothing_heavy(cli_env):
    code = ("import sys; from starchat_tui.cli import main; rc = main(['train', '--help']); "
            "assert rc == 0; heavy = {'torch', 'transformers', 'deepspeed'} & set(sys.modules); "
            "assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], env=cli_env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "usage: starchat-tui train CONFIG.yaml" in result.stdout
    assert "--nproc-per-node" in result.stdout and "exit codes" in result.stdout
    assert os.environ.get("STARCHAT_TUI_DEBUG") is None


def test_progress_bar_redraws_one_line_on_a_terminal():
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from starchat_tui.training.progress import ProgressPrinter, ProgressReporter

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    bar = ProgressReporter(ProgressPrinter(screen))
    state = TrainerState(max_steps=4, is_world_process_zero=True)
    args, control = TrainingArguments(output_dir="unused", report_to="none"), TrainerControl()
    bar.on_train_begin(args, state, control)
    for step in range(1, 5):
        state.global_step, state.num_input_tokens_seen = step, 1000 * step
        time.sleep(0.01)
        bar.on_log(args, state, control, logs={"loss": 2.0 / step})
        bar.on_step_end(args, state, control)
    bar.on_train_end(args, state, control)
    frames = screen.getvalue().split("\r\x1b[2K")[1:]
    assert len(frames) == 5 and frames[-1].endswith("\n") and not frames[0].endswith("\n")
    assert frames[0].startswith("step 1/4 [######                  ] · loss 2.0000 · ")
    assert "tok/s · ETA 0:00" in frames[0]
    assert frames[-1].startswith("step 4/4 [########################] · loss 0.5000")
