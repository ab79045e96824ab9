"""YAML recipes and --key value overrides: real types, clear errors, the shipped recipes and DeepSpeed JSONs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from starchat_tui.errors import UsageError
from starchat_tui.training.config import TrainConfig, parse_invocation
from starchat_tui.training.ds_config import SHIPPED, SHIPPED_FILES, ZERO3, check_deepspeed
from starchat_tui.training.recipes import recipes_dir

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def recipe(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("")
    path = tmp_path / "r.yaml"
    path.write_text(
        "model_name_or_path: some/model\n"
        f"dataset_name: {data}\n"
        f"output_dir: {tmp_path / 'out'}\n"
        "learning_rate: 2e-5\n"          # a string to YAML 1.1
        "num_train_epochs: 2\n"
        "bf16: true\n"
        "warmup_ratio: 0.03\n"           # the old name
        "gradient_checkpointing: true\n"
        "role_map: {human: user}\n"
    )
    return path


def test_yaml_values_get_their_field_types(recipe):
    config = parse_invocation([str(recipe)]).config
    assert config.training["learning_rate"] == 2e-5 and isinstance(config.training["learning_rate"], float)
    assert config.training["num_train_epochs"] == 2
    assert config.training["bf16"] is True
    assert config.training["warmup_steps"] == 0.03 and "warmup_ratio" not in config.training
    assert config.training["activation_checkpointing"] is True
    assert config.data.role_map == {"human": "user"}
    assert config.model.model_name_or_path == "some/model"


def test_a_config_built_in_python_gets_the_same_defaults_and_checks(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("")
    options = {"model_name_or_path": "some/model", "dataset_name": str(data), "output_dir": str(tmp_path / "out")}
    built = TrainConfig.build(**options, learning_rate=1e-4, warmup_ratio=0.03, packing=False, resume=False)
    parsed = parse_invocation([*(f"--{key}={value}" for key, value in options.items()), "--learning_rate", "1e-4",
                               "--warmup_steps", "0.03", "--packing", "false", "--no-resume"]).config
    assert built.to_json() == parsed.to_json()
    assert built.training["logging_steps"] == 10 and built.training["report_to"] == "none"  # our defaults
    assert "remove_unused_columns" not in TrainConfig.build(**options, remove_unused_columns=True).training  # fixed
    assert built.data.max_length == 2048 and built.model.dtype == "float32" and built.resume is False
    with pytest.raises(UsageError, match="unknown option 'learning_rat'; did you mean learning_rate"):
        TrainConfig.build(**options, learning_rat=1e-4)
    with pytest.raises(UsageError, match="no data: set dataset_name"):
        TrainConfig.build(model_name_or_path="m", output_dir="o")
    with pytest.raises(UsageError, match="LoRA"):
        TrainConfig.build(**options, use_peft=True, deepspeed="zero3")


def test_command_line_overrides_with_types(recipe):
    config = parse_invocation([
        str(recipe), "--num_train_epochs", "3", "--bf16", "false", "--save_total_limit", "2",
        "--learning-rate=1e-4", "--hub_model_id=me/model=v2", "--packing", "false", "--max_length", "512",
        "--lr_scheduler_type", "cosine", "--report_to", "none",
    ]).config
    training = config.training
    assert training["num_train_epochs"] == 3.0 and isinstance(training["num_train_epochs"], float)
    assert training["bf16"] is False
    assert training["save_total_limit"] == 2 and isinstance(training["save_total_limit"], int)
    assert training["learning_rate"] == 1e-4
    assert training["hub_model_id"] == "me/model=v2"  # values may hold '='
    assert config.data.packing is False and config.data.max_length == 512
    assert training["lr_scheduler_type"] == "cosine"


def test_options_may_come_before_the_recipe(recipe):
    config = parse_invocation(["--num_train_epochs", "5", str(recipe)]).config
    assert config.training["num_train_epochs"] == 5.0 and config.source == str(recipe)


def test_launch_and_resume_flags(recipe, tmp_path):
    invocation = parse_invocation([str(recipe), "--nproc-per-node", "2", "--nnodes", "1", "--deepspeed", "zero3"])
    assert invocation.launch.nproc_per_node == 2 and invocation.launch.distributed
    assert invocation.config.training["deepspeed"] == "zero3"
    assert parse_invocation([str(recipe)]).config.resume is None
    assert parse_invocation([str(recipe), "--resume"]).config.resume is True
    assert parse_invocation([str(recipe), "--no-resume"]).config.resume is False
    checkpoint = tmp_path / "checkpoint-7"
    checkpoint.mkdir()
    assert parse_invocation([str(recipe), "--resume", str(checkpoint)]).config.resume == str(checkpoint)
    assert parse_invocation([str(recipe), "--inspect", "--inspect-examples", "5"]).inspect_examples == 5


@pytest.mark.parametrize(("argv", "message"), [
    (["--learning_rat", "1"], "unknown option --learning_rat; did you mean --learning_rate?"),
    (["--num_train_epochs", "many"], "invalid"),
    (["--nproc-per-node", "0"], "at least 1"),
    (["--deepspeed", "nowhere.json"], "no such file"),
    (["--lr_scheduler_type", "sometimes"], "invalid choice"),
    (["--resume", "/nonexistent/checkpoint-3"], "no such checkpoint folder"),
    (["--use_peft", "--nproc-per-node", "2"], "LoRA (use_peft) runs in one process"),
])
def test_bad_command_lines_are_usage_errors(recipe, argv, message):
    with pytest.raises(UsageError) as caught:
        parse_invocation([str(recipe), *argv])
    assert message in str(caught.value)


def test_settings_transformers_rejects_are_usage_errors(recipe):
    from starchat_tui.training.trainer import build_training_arguments

    config = parse_invocation([str(recipe), "--bf16", "true", "--fp16", "true"]).config
    with pytest.raises(UsageError, match="invalid training settings"):
        build_training_arguments(config, {})


def test_bad_yaml(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model_name_or_path: m\nlearning_rte: 1\n")
    with pytest.raises(UsageError, match="unknown option 'learning_rte'; did you mean learning_rate"):
        parse_invocation([str(path)])
    path.write_text("a: [1,\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        parse_invocation([str(path)])
    path.write_text("- a\n- b\n")
    with pytest.raises(UsageError, match="expected a mapping"):
        parse_invocation([str(path)])
    with pytest.raises(UsageError, match="no such config file"):
        parse_invocation([str(tmp_path / "missing.yaml")])


def test_required_settings(tmp_path):
    with pytest.raises(UsageError, match="nothing to train: give a recipe"):
        parse_invocation([])
    with pytest.raises(UsageError, match="set model_name_or_path"):
        parse_invocation(["--dataset_name", "x.jsonl", "--output_dir", "o"])
    with pytest.raises(UsageError, match="set dataset_name"):
        parse_invocation(["--model_name_or_path", "m", "--output_dir", "o"])
    with pytest.raises(UsageError, match="set output_dir"):
        parse_invocation(["--model_name_or_path", "m", "--dataset_name", "x.jsonl"])


def test_reporting_needs_the_package_installed(recipe, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(UsageError, match="pip install wandb"):
        parse_invocation([str(recipe), "--report_to", "wandb"])


def test_config_survives_the_trip_to_the_workers(recipe):
    config = parse_invocation([str(recipe), "--lr_scheduler_type", "cosine", "--resume"]).config
    again = TrainConfig.decoded(config.encoded())
    assert again.to_json() == config.to_json()
    assert again.training["lr_scheduler_type"] == "cosine" and again.resume is True
    assert all(c.isalnum() or c in "-_=" for c in config.encoded())  # one safe shell word


def test_starchat_alpha_recipe_matches_the_blog():
    from starchat_tui.training.trainer import build_training_arguments

    config = parse_invocation(["starchat-alpha"]).config  # a shipped recipe, by name
    assert config.source == str(REPO / "starchat_tui" / "recipes" / "starchat-alpha.yaml")
    training = config.training
    assert config.model.model_name_or_path == "bigcode/starcoderbase"
    assert config.data.dataset_name == "HuggingFaceH4/oasst1_en" and config.data.max_length == 1024
    assert training["learning_rate"] == 2e-5 and training["num_train_epochs"] == 3
    assert training["warmup_steps"] == 0.03 and training["lr_scheduler_type"] == "cosine"
    assert training["bf16"] is True and training["activation_checkpointing"] is True
    assert training["per_device_train_batch_size"] * training["gradient_accumulation_steps"] * 8 == 256
    assert not training.get("push_to_hub") and "overwrite_output_dir" not in training
    args = build_training_arguments(config, {"bf16": False, "tf32": False})  # no GPU here
    assert args.lr_scheduler_type.value == "cosine" and args.learning_rate == 2e-5
    assert args.load_best_model_at_end and args.save_steps == args.eval_steps


def test_shipped_deepspeed_json_is_zero3_without_optimizer_or_scheduler():
    for name, filename in SHIPPED_FILES.items():
        on_disk = json.loads((recipes_dir() / filename).read_text())
        assert on_disk == SHIPPED[name]()
        assert "optimizer" not in on_disk and "scheduler" not in on_disk
        zero = on_disk["zero_optimization"]
        assert zero["stage"] == 3 and zero["stage3_gather_16bit_weights_on_model_save"] is True
        assert on_disk["bf16"]["enabled"] == "auto"
    assert "offload_optimizer" not in ZERO3["zero_optimization"]
    assert SHIPPED["zero3-offload"]()["zero_optimization"]["offload_param"]["device"] == "cpu"


def test_user_deepspeed_json_with_a_scheduler_is_called_out(tmp_path):
    path = tmp_path / "ds.json"
    path.write_text(json.dumps({**ZERO3, "scheduler": {"type": "WarmupLR"}}))
    warnings = check_deepspeed(str(path))
    assert len(warnings) == 1 and "'scheduler' block" in warnings[0] and "lr_scheduler_type" in warnings[0]
    path.write_text("{oops")
    with pytest.raises(UsageError, match="not valid JSON"):
        check_deepspeed(str(path))


def test_evaluation_settings(recipe, tmp_path):
    with pytest.raises(UsageError, match="no evaluation data"):
        parse_invocation([str(recipe), "--eval_strategy", "steps"])
    with pytest.raises(UsageError, match="set eval_dataset_name to a held-out file"):
        parse_invocation([str(recipe), "--eval_split", "test"])
    held_out = tmp_path / "eval.jsonl"
    held_out.write_text("")
    config = parse_invocation([str(recipe), "--eval_dataset_name", str(held_out)]).config
    assert config.training["eval_strategy"] == "epoch"  # given evaluation data, it is used
