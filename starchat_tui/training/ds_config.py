"""DeepSpeed configs: the shipped ZeRO-3 recipes, and checks on a user's own JSON.

``--deepspeed zero3`` names the shipped ZeRO-3 bf16 config (``starchat_tui/recipes/zero3.json``,
kept identical to :data:`ZERO3` by a test so an installed package needs no data files);
``--deepspeed zero3-offload`` adds CPU offload of optimizer states and parameters for smaller GPUs.
Neither has an ``optimizer`` or ``scheduler`` block: with one, DeepSpeed's would silently replace the
optimizer and the learning-rate schedule the YAML asks for (the original StarChat JSON's ``WarmupLR``
overrode its YAML's cosine schedule). Everything sized by the run is ``auto``, filled in by transformers
from TrainingArguments so the two can never disagree.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import UsageError

ZERO3: dict[str, Any] = {
    "bf16": {"enabled": "auto"},
    "fp16": {"enabled": "auto"},
    "zero_optimization": {
        "stage": 3,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "sub_group_size": 1_000_000_000,
        "reduce_bucket_size": "auto",
        "stage3_prefetch_bucket_size": "auto",
        "stage3_param_persistence_threshold": "auto",
        "stage3_max_live_parameters": 1_000_000_000,
        "stage3_max_reuse_distance": 1_000_000_000,
        "stage3_gather_16bit_weights_on_model_save": True,
    },
    "gradient_accumulation_steps": "auto",
    "gradient_clipping": "auto",
    "train_batch_size": "auto",
    "train_micro_batch_size_per_gpu": "auto",
    "steps_per_print": 1000000,  # DeepSpeed's own step log; the progress bar already says it
    "wall_clock_breakdown": False,
}


def _offload() -> dict[str, Any]:
    config = copy.deepcopy(ZERO3)
    config["zero_optimization"]["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    config["zero_optimization"]["offload_param"] = {"device": "cpu", "pin_memory": True}
    return config


SHIPPED = {"zero3": lambda: copy.deepcopy(ZERO3), "zero3-offload": _offload}
SHIPPED_FILES = {"zero3": "zero3.json", "zero3-offload": "zero3_offload.json"}


def _name(value: str) -> str:
    return value.replace("_", "-").lower()


def resolve_deepspeed(value: str | dict | None) -> dict | str | None:
    """A shipped name becomes its config dict; a path stays a path; None stays None."""
    if value is None or isinstance(value, dict):
        return value
    if _name(value) in SHIPPED:
        return SHIPPED[_name(value)]()
    return str(Path(value).expanduser())


def check_deepspeed(value: str | dict | None) -> list[str]:
    """Fail on a missing or unreadable JSON; return warnings for blocks that override the YAML."""
    if value is None or isinstance(value, dict) or _name(str(value)) in SHIPPED:
        return []
    path = Path(value).expanduser()
    if not path.is_file():
        shipped = ", ".join(SHIPPED)
        raise UsageError(f"--deepspeed {value}: no such file; give a DeepSpeed JSON or one of {shipped}")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"--deepspeed {value}: not valid JSON ({error})") from None
    warnings = []
    for block, replaces in (("optimizer", "optim/learning_rate"), ("scheduler", "lr_scheduler_type/warmup")):
        if block in config:
            warnings.append(f"{value} has a '{block}' block: DeepSpeed's {block} replaces the config's "
                            f"{replaces}; delete the block to use the config's")
    return warnings


if __name__ == "__main__":  # python -m starchat_tui.training.ds_config zero3 > my_zero3.json
    print(json.dumps(SHIPPED[_name(sys.argv[1] if len(sys.argv) > 1 else "zero3")](), indent=2))
