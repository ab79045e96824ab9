"""What a training run is asked to do: a YAML recipe plus ``--key value`` overrides, typed.

One YAML file holds the model options (:class:`ModelArguments`), the data options
(:class:`DataArguments`) and any ``transformers.TrainingArguments`` field. Command-line overrides use
the same names, as ``--key value`` or ``--key=value`` (dashes or underscores), and get the field's real
type: ``--num_train_epochs 3`` is a float, ``--bf16 false`` is False, ``--save_total_limit 2`` an int.
YAML values get the same treatment, so ``learning_rate: 2e-5`` (a string to YAML) is still a float.
Unknown keys are errors that suggest the closest real name, never silently ignored.
"""

from __future__ import annotations

import argparse
import base64
import difflib
import json
import os
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import UsageError

# Older names users bring from the StarChat/alignment-handbook recipes and older transformers.
ALIASES = {
    "warmup_ratio": "warmup_steps",  # transformers 5: a float below 1 in warmup_steps is a ratio
    "evaluation_strategy": "eval_strategy",
    "gradient_checkpointing": "activation_checkpointing",
    "gradient_checkpointing_kwargs": "activation_checkpointing_kwargs",
    "block_size": "max_length",
    "max_seq_length": "max_length",
    "torch_dtype": "dtype",
    "dialogue_template": None,  # the StarChat format is the only one; the key is accepted and ignored
}

# TrainingArguments defaults that suit this command better, used when neither the YAML nor the
# command line sets them.
TRAINING_DEFAULTS = {
    "logging_steps": 10,
    "save_steps": 500,
    "report_to": "none",
    # Every weight of a causal LM is used in each step; looking for unused ones costs a graph traversal.
    "ddp_find_unused_parameters": False,
}

# Set by the trainer whatever the config says: they are how it works, not choices.
TRAINING_FIXED = {
    "remove_unused_columns": False,  # rows are our own Example objects, not dataset columns
    "disable_tqdm": True,  # the progress bar is ours (loss, tokens/s, ETA)
    "include_num_input_tokens_seen": "non_padding",
    "label_names": ["labels"],
    "use_cache": False,  # a KV cache during training would also hide the packed-sequence boundaries
}


@dataclass
class ModelArguments:
    """Which model to fine-tune and how to load it."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "a Hub id or a local folder"})
    model_revision: str = field(default="main", metadata={"help": "branch, tag or commit on the Hub"})
    tokenizer_name: str | None = field(default=None, metadata={"help": "tokenizer to use (default: the model's)"})
    dtype: str = field(
        default="float32",
        metadata={"help": "weights dtype at load: float32 (default; bf16 training keeps fp32 master weights), "
                          "bfloat16, float16 or auto"},
    )
    attn_implementation: str | None = field(default=None, metadata={"help": "sdpa, eager, flash_attention_2, ..."})
    trust_remote_code: bool = field(default=False, metadata={"help": "run code shipped with the model"})
    use_peft: bool = field(default=False, metadata={"help": "train LoRA adapters (single GPU/CPU), merged on save"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_target_modules: str | None = field(
        default=None, metadata={"help": "comma-separated module names (default: all linear layers)"}
    )


@dataclass
class DataArguments:
    """Where the dialogues come from and how they become training sequences."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "a Hub dataset id, or a local .jsonl/.json/.parquet file or folder"}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset configuration name"})
    dataset_split: str = field(default="train", metadata={"help": "Hub split to train on"})
    eval_dataset_name: str | None = field(
        default=None, metadata={"help": "evaluation data (default: dataset_name, when eval_split is set)"}
    )
    eval_split: str | None = field(default=None, metadata={"help": "Hub split to evaluate on, e.g. test"})
    messages_field: str = field(default="messages", metadata={"help": "column holding the message list"})
    role_field: str = field(default="role", metadata={"help": "key holding each message's role"})
    content_field: str = field(default="content", metadata={"help": "key holding each message's text"})
    role_map: str | None = field(
        default=None, metadata={"help": "rename roles, e.g. human=user,gpt=assistant (a mapping in YAML)"}
    )
    prompt_field: str = field(default="prompt", metadata={"help": "single-turn rows: the prompt column"})
    completion_field: str = field(default="completion", metadata={"help": "single-turn rows: the reply column"})
    system_prompt: str | None = field(default=None, metadata={"help": "system message for dialogues without one"})
    max_length: int = field(default=2048, metadata={"help": "tokens per training sequence; longer dialogues are cut"})
    packing: bool = field(default=True, metadata={"help": "pack several dialogues per sequence (never across them)"})
    skip_invalid: bool = field(default=False, metadata={"help": "drop invalid rows instead of stopping"})
    max_train_samples: int | None = field(default=None, metadata={"help": "use only the first N valid dialogues"})
    max_eval_samples: int | None = field(default=None, metadata={"help": "evaluate on the first N dialogues"})

    def columns(self):
        from .data import Columns, parse_role_map

        return Columns(
            messages=self.messages_field, role=self.role_field, content=self.content_field,
            prompt=self.prompt_field, completion=self.completion_field,
            role_map=parse_role_map(self.role_map), system_prompt=self.system_prompt,
        )


@dataclass
class LaunchOptions:
    """How many processes to start, and where."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    hostfile: str | None = None

    @property
    def distributed(self) -> bool:
        return self.nproc_per_node > 1 or self.nnodes > 1 or self.hostfile is not None


@dataclass
class TrainConfig:
    """Everything one run needs: model, data, TrainingArguments fields, and how to resume."""

    model: ModelArguments
    data: DataArguments
    training: dict[str, Any]
    # None: resume from the newest complete checkpoint in output_dir if there is one; False: start over;
    # True: the newest checkpoint, which must exist; a string: that checkpoint folder.
    resume: bool | str | None = None
    source: str | None = None

    @classmethod
    def build(cls, *, resume: bool | str | None = None, source: str | None = None, **options: Any) -> TrainConfig:
        """A checked config from option names and values, over this command's defaults.

        ``options`` are any :class:`ModelArguments`, :class:`DataArguments` or ``TrainingArguments``
        field, by name (older names too, see ALIASES), with Python values::

            TrainConfig.build(model_name_or_path="bigcode/starcoderbase-1b", dataset_name="chats.jsonl",
                              output_dir="out", num_train_epochs=1, learning_rate=2e-5, resume=False)

        ``source`` names where the values came from, in error messages. ``starchat-tui train`` builds its
        config through here too, so the defaults and the checks are the same for both.
        """
        model_keys = {f.name for f in fields(ModelArguments)}
        data_keys = {f.name for f in fields(DataArguments)}
        train_keys = set(training_fields())
        given = _normalize_keys(options, option_names(), source or "the options")
        values: dict[str, Any] = {**TRAINING_DEFAULTS, **given}
        if "resume_from_checkpoint" in values:
            checkpoint = values.pop("resume_from_checkpoint")
            resume = checkpoint if resume is None and checkpoint else resume
        for key in TRAINING_FIXED:
            values.pop(key, None)
        try:
            model = ModelArguments(**{k: v for k, v in values.items() if k in model_keys})
            data = DataArguments(**{k: v for k, v in values.items() if k in data_keys})
        except TypeError as error:
            raise UsageError(f"invalid option: {error}") from None
        training = {k: v for k, v in values.items() if k in train_keys}
        config = cls(model, data, training, resume, source)
        config.check()
        return config

    def check(self) -> None:
        """Problems a user can fix, found before anything loads."""
        where = self.source or "the options"
        if not self.model.model_name_or_path:
            raise UsageError(f"{where}: no model: set model_name_or_path (a Hub id or a local folder)")
        if not self.data.dataset_name:
            raise UsageError(f"{where}: no data: set dataset_name (a Hub dataset id, or a .jsonl/.json/.parquet file or folder)")
        if not self.training.get("output_dir"):
            raise UsageError(f"{where}: set output_dir, the folder for checkpoints and the trained model")
        if self.data.max_length < 2:
            raise UsageError(f"{where}: max_length must be at least 2, not {self.data.max_length}")
        self.data.columns()  # role_map errors surface now, not after the model loads
        _check_evaluation(self, where)
        self.training["report_to"] = _check_report_to(self.training.get("report_to", "none"))
        if self.model.use_peft and self.training.get("deepspeed"):
            raise UsageError(PEFT_ALONE)
        if isinstance(self.resume, str) and not Path(self.resume).expanduser().is_dir():
            raise UsageError(f"--resume {self.resume}: no such checkpoint folder")
        from .ds_config import check_deepspeed

        check_deepspeed(self.training.get("deepspeed"))

    @property
    def output_dir(self) -> Path:
        return Path(self.training["output_dir"])

    def to_json(self) -> str:
        return json.dumps(
            {"model": asdict(self.model), "data": asdict(self.data), "training": _plain(self.training),
             "resume": self.resume, "source": self.source},
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        data = json.loads(text)
        return cls(ModelArguments(**data["model"]), DataArguments(**data["data"]), data["training"],
                   data["resume"], data["source"])

    def encoded(self) -> str:
        """The config as one shell-safe token, for worker command lines on every node."""
        return base64.urlsafe_b64encode(self.to_json().encode()).decode()

    @classmethod
    def decoded(cls, token: str) -> TrainConfig:
        return cls.from_json(base64.urlsafe_b64decode(token.encode()).decode())


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------------------
# Parsing


@dataclass
class Invocation:
    """A parsed ``starchat-tui train`` command line."""

    config: TrainConfig
    launch: LaunchOptions
    inspect: bool = False
    inspect_examples: int = 3


def _parser_class():
    from transformers import HfArgumentParser

    class TrainArgumentParser(HfArgumentParser):
        """HfArgumentParser whose errors are one-line UsageErrors, never a SystemExit with usage text."""

        def error(self, message: str):
            raise UsageError(f"{message} (see starchat-tui train --help)")

    return TrainArgumentParser


def training_fields() -> dict[str, Any]:
    from transformers import TrainingArguments

    return {f.name: f for f in fields(TrainingArguments) if f.init}


def option_names() -> set[str]:
    """Every option a config can set: the model, data and TrainingArguments fields."""
    return {f.name for f in fields(ModelArguments)} | {f.name for f in fields(DataArguments)} | set(training_fields())


def build_parser():
    """Every option ``train`` understands: ours, the model and data options, and TrainingArguments."""
    from transformers import TrainingArguments

    parser = _parser_class()((ModelArguments, DataArguments, TrainingArguments), allow_abbrev=False, add_help=False)
    # Only what the user actually wrote comes back from parse_args; defaults are merged in later, in
    # order: our defaults, the YAML, the command line.
    for action in parser._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    launch = parser.add_argument_group("starchat-tui train")
    launch.add_argument("config", nargs="?", help="the YAML recipe")
    launch.add_argument("--nproc-per-node", "--nproc_per_node", type=int, default=1, dest="launch_nproc_per_node")
    launch.add_argument("--nnodes", type=int, default=1, dest="launch_nnodes")
    launch.add_argument("--node-rank", "--node_rank", type=int, default=0, dest="launch_node_rank")
    launch.add_argument("--master-addr", "--master_addr", dest="launch_master_addr")
    launch.add_argument("--master-port", "--master_port", type=int, dest="launch_master_port")
    launch.add_argument("--hostfile", dest="launch_hostfile")
    launch.add_argument("--resume", nargs="?", const=True, default=None, dest="resume")
    launch.add_argument("--no-resume", "--no_resume", action="store_false", dest="resume", default=None)
    launch.add_argument("--inspect", action="store_true")
    launch.add_argument("--inspect-examples", "--inspect_examples", type=int, default=3)
    return parser


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def read_yaml(path: str) -> dict[str, Any]:
    import yaml

    file = Path(path).expanduser()
    if not file.is_file():
        from .recipes import shipped

        names = ", ".join(shipped())
        raise UsageError(f"{path}: no such config file" + (f" or shipped recipe ({names})" if names else ""))
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UsageError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of option: value, found {type(data).__name__}")
    return data


def _alias(key: str, known: set[str]) -> str | None:
    """The current name of ``key``; None for keys that are accepted and ignored."""
    if key in ALIASES and (ALIASES[key] is None or ALIASES[key] in known):
        return ALIASES[key]
    return key


def _normalize_keys(values: dict[str, Any], known: set[str], where: str) -> dict[str, Any]:
    result = {}
    for raw_key, value in values.items():
        key = _alias(str(raw_key).replace("-", "_"), known)
        if key is None:
            continue
        if key not in known:
            raise UsageError(f"{where}: unknown option {raw_key!r}{_suggest(key, sorted(known))}")
        result[key] = value
    return result


def _coerce(parser, key: str, value: Any, where: str) -> Any:
    """Give a YAML value its field's type; YAML reads ``2e-5`` and ``1e9`` as strings."""
    action = next((a for a in parser._actions if a.dest == key), None)
    kind = getattr(action, "type", None)
    if not isinstance(value, str) or kind in (None, str):
        return value
    try:
        return kind(value)
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        raise UsageError(f"{where}: {key}: {value!r} is not a valid value") from None


def _check_report_to(value: Any) -> list[str] | str:
    """TensorBoard or W&B only when installed: asking for a missing one is an error, not a crash later."""
    import importlib.util

    names = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value or [])
    packages = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio", "mlflow": "mlflow"}
    for name in names:
        package = packages.get(name)
        if package and importlib.util.find_spec(package) is None:
            raise UsageError(f"report_to {name} needs the {package} package: pip install {package}")
    return names if len(names) != 1 else names[0]


def parse_invocation(argv: list[str]) -> Invocation:
    """Parse ``starchat-tui train`` arguments into a typed :class:`Invocation`."""
    parser = build_parser()
    namespace, extras = parser.parse_known_args(argv)
    if extras:
        options = sorted(o for a in parser._actions for o in a.option_strings)
        first = extras[0]
        if not first.startswith("-"):
            raise UsageError(f"unexpected argument {first!r}: give one recipe, then --key value options")
        hint = _suggest(first.split("=")[0], options)
        raise UsageError(f"unknown option {first}{hint} (see starchat-tui train --help)")
    given = dict(vars(namespace))
    config_path = given.pop("config", None)
    if config_path:
        from .recipes import find_recipe

        config_path = find_recipe(config_path)
    launch = LaunchOptions(**{k.removeprefix("launch_"): given.pop(k) for k in list(given) if k.startswith("launch_")})
    resume = given.pop("resume", None)
    inspect, examples = given.pop("inspect"), given.pop("inspect_examples")

    if not config_path and not given:
        raise UsageError("nothing to train: give a recipe, e.g. starchat-tui train starchat-alpha "
                         "(see starchat-tui train --help)")
    values: dict[str, Any] = {}
    if config_path:
        from_yaml = _normalize_keys(read_yaml(config_path), option_names(), config_path)
        values.update({k: _coerce(parser, k, v, config_path) for k, v in from_yaml.items()})
    values.update(given)
    config = TrainConfig.build(resume=resume, source=config_path, **values)
    check_launch(config, launch)
    return Invocation(config, launch, inspect, examples)


PEFT_ALONE = ("LoRA (use_peft) runs in one process without DeepSpeed; drop --nproc-per-node/--deepspeed, "
              "or train all weights with ZeRO-3 instead")


def check_launch(config: TrainConfig, launch: LaunchOptions) -> None:
    """Problems with how many processes to start, and where."""
    if launch.nproc_per_node < 1 or launch.nnodes < 1:
        raise UsageError("--nproc-per-node and --nnodes must be at least 1")
    if launch.hostfile and not Path(launch.hostfile).expanduser().is_file():
        raise UsageError(f"--hostfile {launch.hostfile}: no such file")
    if config.model.use_peft and launch.distributed:
        raise UsageError(PEFT_ALONE)


def _check_evaluation(config: TrainConfig, where: str) -> None:
    from .data import looks_local

    data = config.data
    has_eval = bool(data.eval_split or data.eval_dataset_name)
    strategy = str(_plain(config.training.get("eval_strategy", "no")))
    if strategy != "no" and not has_eval:
        raise UsageError(f"{where}: eval_strategy is {strategy} but there is no evaluation data; "
                         "set eval_split (a Hub split) or eval_dataset_name (a held-out file)")
    if data.eval_split and not data.eval_dataset_name and looks_local(data.dataset_name):
        raise UsageError(f"{where}: eval_split names a split of a Hub dataset, but {data.dataset_name} is local; "
                         "set eval_dataset_name to a held-out file instead")
    if has_eval and strategy == "no":
        config.training["eval_strategy"] = "epoch"  # evaluation data nobody evaluates on is a mistake


def default_threads(nproc: int) -> str:
    """OMP threads per process so that N processes share the cores instead of fighting over them."""
    return str(max(1, (os.cpu_count() or 1) // max(1, nproc)))
