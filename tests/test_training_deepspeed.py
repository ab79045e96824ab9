"""A real 2-rank DeepSpeed ZeRO-3 run on CPU, launched by starchat-tui itself, and what it leaves behind."""

from __future__ import annotations

import json
import math
import subprocess

import pytest

from starchat_tui.training.config import LaunchOptions, parse_invocation
from starchat_tui.training.spawn_ranks import deepspeed_command, needs_launcher, torchrun_args, worker_environment

PING = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": "pong! The server is up."}]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"messages": PING}) + "\n" for _ in range(8)))
    return path


@pytest.mark.slow
def test_zero3_on_two_cpu_ranks_saves_a_model_that_chats(data, tmp_path, cli_env, starchat_cmd):
    """A base model without the StarChat tokens, so the embeddings are resized under ZeRO-3 as well."""
    import torch
    from safetensors.torch import load_file
    from test_training_tokens import build_base_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tmp_path / "base"
    vocab = build_base_model(base, n_embd=64)
    out = tmp_path / "out"
    result = subprocess.run(
        [*starchat_cmd, "train", "--model_name_or_path", str(base), "--dataset_name", str(data),
         "--output_dir", str(out), "--nproc-per-node", "2", "--deepspeed", "zero3", "--max_steps", "4",
         "--per_device_train_batch_size", "1", "--max_length", "64", "--learning_rate", "1e-3",
         "--lr_scheduler_type", "cosine", "--logging_steps", "1", "--save_steps", "4"],
        env=cli_env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "starting 2 processes" in result.stderr
    assert f"resized the embeddings to {vocab + 4}" in result.stderr
    assert "Traceback" not in result.stderr and "ChildFailedError" not in result.stderr
    assert "terminate called" not in result.stderr  # no rank aborted in teardown after saving
    assert result.stderr.count("saved the model to") == 1  # one voice, not one per rank

    # Full weights gathered from the ZeRO-3 shards, not empty placeholders, and changed by training.
    trained = load_file(out / "model.safetensors")
    before = AutoModelForCausalLM.from_pretrained(base).state_dict()
    embeddings = trained["transformer.wte.weight"]
    assert embeddings.shape == (vocab + 4, 64)
    for name, tensor in trained.items():
        if name != "transformer.wte.weight":
            assert tensor.shape == before[name].shape, name
    assert not torch.equal(trained["transformer.h.0.mlp.c_fc.weight"], before["transformer.h.0.mlp.c_fc.weight"])
    # The four new rows were initialised from the old ones (gathered across ranks), not left at zero.
    new_rows, old_rows = embeddings[vocab:], before["transformer.wte.weight"]
    assert torch.isfinite(new_rows).all() and (new_rows.norm(dim=1) > 0).all()
    assert (new_rows.mean(0) - old_rows.mean(0)).abs().max() < 0.05

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.convert_tokens_to_ids("<|end|>") == vocab + 3
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert reloaded.config.use_cache is True and reloaded.config.vocab_size == vocab + 4

    # The YAML's cosine schedule ran, not a scheduler block from the DeepSpeed JSON.
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    rates = [entry["learning_rate"] for entry in state["log_history"] if "learning_rate" in entry]
    assert rates == pytest.approx([1e-3 * 0.5 * (1 + math.cos(math.pi * step / 4)) for step in range(4)])
    assert (out / "checkpoint-4" / "global_step4").is_dir()  # a real ZeRO checkpoint to resume from

    from starchat_tui import Conversation, load_engine

    engine = load_engine(str(out), device="cpu")
    conversation = Conversation()
    conversation.add("user", "ping")
    list(engine.stream(conversation, temperature=0, max_new_tokens=8))
    assert conversation.messages[-1]["role"] == "assistant"


@pytest.mark.slow
def test_a_worker_error_comes_back_as_one_line_and_its_exit_code(data, tmp_path, cli_env, starchat_cmd):
    result = subprocess.run(
        [*starchat_cmd, "train", "--model_name_or_path", str(tmp_path / "missing-model"),
         "--dataset_name", str(data), "--output_dir", str(tmp_path / "out"), "--nproc-per-node", "2"],
        env=cli_env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 3
    assert result.stderr.count("could not load model") == 1
    assert "Traceback" not in result.stderr and "ChildFailedError" not in result.stderr


def test_bad_data_stops_before_any_process_starts(tiny_model, tmp_path, capsys):
    from starchat_tui.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": ""}]}\n')
    code = main(["train", "--model_name_or_path", tiny_model, "--dataset_name", str(bad),
                 "--output_dir", str(tmp_path / "out"), "--nproc-per-node", "2", "--deepspeed", "zero3"])
    err = capsys.readouterr().err
    assert code == 2 and f"{bad}:1: message 1: empty user message" in err
    assert "starting" not in err


def _config(tmp_path, *extra):
    data = tmp_path / "d.jsonl"
    data.write_text("")
    return parse_invocation(["--model_name_or_path", "m", "--dataset_name", str(data),
                             "--output_dir", str(tmp_path / "o"), *extra])


def test_launch_commands(tmp_path):
    invocation = _config(tmp_path, "--nproc-per-node", "8", "--deepspeed", "zero3")
    args = torchrun_args(invocation.launch, invocation.config)
    assert args[:5] == ["--nproc-per-node", "8", "--nnodes", "1", "--standalone"]
    assert args[5:8] == ["--module", "starchat_tui.training.rank", "--resolved"]
    from starchat_tui.training.config import TrainConfig

    assert TrainConfig.decoded(args[8]).to_json() == invocation.config.to_json()

    nodes = LaunchOptions(nproc_per_node=4, nnodes=2, node_rank=1, master_addr="10.0.0.1", master_port=6000)
    args = torchrun_args(nodes, invocation.config)
    assert args[:10] == ["--nproc-per-node", "4", "--nnodes", "2", "--node-rank", "1",
                         "--master-addr", "10.0.0.1", "--master-port", "6000"]

    hostfile = tmp_path / "hosts"
    hostfile.write_text("node1 slots=8\nnode2 slots=8\n")
    command = deepspeed_command(LaunchOptions(hostfile=str(hostfile), nnodes=2), invocation.config)
    assert command[1:5] == ["-m", "deepspeed.launcher.runner", "--hostfile", str(hostfile)]
    assert command[5:7] == ["--num_nodes", "2"]
    assert command[-4:-1] == ["--module", "starchat_tui.training.rank", "--resolved"]


def test_when_a_launcher_is_needed(tmp_path):
    assert not needs_launcher(LaunchOptions(), _config(tmp_path).config)
    assert needs_launcher(LaunchOptions(nproc_per_node=2), _config(tmp_path).config)
    assert needs_launcher(LaunchOptions(), _config(tmp_path, "--deepspeed", "zero3").config)


def test_worker_environment_on_this_machine(monkeypatch):
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("DS_ACCELERATOR", raising=False)
    env = worker_environment(LaunchOptions(nproc_per_node=2), debug=True)
    assert int(env["OMP_NUM_THREADS"]) >= 1 and env["STARCHAT_TUI_DEBUG"] == "1"
    if not torch.cuda.is_available():
        assert env["DS_ACCELERATOR"] == "cpu"
