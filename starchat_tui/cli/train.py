"""``starchat-tui train``: fine-tune a model on dialogues, on one CPU, one GPU, or many GPUs and nodes."""

from __future__ import annotations

import argparse
from functools import partial

from ..errors import EXIT_INTERRUPTED, EXIT_OK
from . import options
from .base import Command

DESCRIPTION = """\
Fine-tune a causal language model on dialogues in the StarChat format. The result is a standard
Hugging Face folder that chats straight away: starchat-tui -m OUTPUT_DIR.

  starchat-tui train starchat-alpha             the shipped StarChat-alpha recipe (starchat_tui/recipes/)
  starchat-tui train my.yaml --num_train_epochs 1 --learning_rate 1e-5
  starchat-tui train my.yaml --nproc-per-node 8 --deepspeed zero3
  starchat-tui train --inspect my.yaml          show encoded examples and statistics, train nothing

CONFIG.yaml (a file, or the name of a shipped recipe) holds model options, data options and any
transformers.TrainingArguments field. Every key can also be given on the command line as --key value
or --key=value, and gets the field's type (--bf16 false, --num_train_epochs 3). Common keys:

  model_name_or_path    a Hub id or a local folder
  dataset_name          a Hub dataset id, or a .jsonl/.json/.parquet file, a folder of them, or a
                        starchat-tui history export
  output_dir            checkpoints and the trained model
  max_length            tokens per training sequence (default 2048; longer dialogues are cut)
  packing               several dialogues per sequence, never across them (default true)
  messages_field, role_field, content_field, role_map (human=user,gpt=assistant), system_prompt
  eval_split / eval_dataset_name, max_train_samples, use_peft (LoRA, one process), dtype
  learning_rate, num_train_epochs, per_device_train_batch_size, gradient_accumulation_steps,
  save_steps, save_total_limit, bf16, report_to (tensorboard/wandb, when installed), push_to_hub, ...

train options:
  --inspect                 print the first encoded examples (masked text set apart) and statistics
  --inspect-examples N      how many examples --inspect prints (default 3)
  --skip-invalid            drop invalid rows (and say how many) instead of stopping on them
  --resume [CHECKPOINT]     resume from CHECKPOINT, or from the newest one in output_dir; resuming
                            from the newest complete checkpoint is also the default
  --no-resume               start over even if output_dir holds checkpoints
  --deepspeed NAME|PATH     zero3 (shipped ZeRO-3 bf16 config), zero3-offload (optimizer and weights
                            in CPU memory), or your own DeepSpeed JSON
  --nproc-per-node N        processes (GPUs) per node; starts torchrun for you
  --nnodes N, --node-rank R, --master-addr HOST, --master-port PORT
                            several nodes: run the same command on each, with its own --node-rank
  --hostfile FILE           several nodes through the DeepSpeed launcher (ssh/pdsh), from one command

Invalid rows stop the run before anything trains, listed with file and line. Progress (loss,
tokens/s, ETA) goes to stderr; Ctrl-C stops, and running the same command resumes.
"""

say = partial(options.say, command="train")


class Train(Command):
    name = "train"
    help = "fine-tune a model on dialogues (needs the train extra)"
    description = DESCRIPTION
    usage = "starchat-tui train CONFIG.yaml [--key value ...] [options]"
    takes_unknown = True  # the recipe and every --key value: parsed by training.config.parse_invocation

    def run(self, args: argparse.Namespace) -> int:
        return train(args.extra, debug=args.debug)


def train(argv: list[str], *, debug: bool = False) -> int:
    from ..training.config import parse_invocation
    from ..training.progress import ProgressPrinter
    from ..training.spawn_ranks import launch, needs_launcher
    from ..training.trainer import load_split, quiet_libraries, run_training

    quiet_libraries()
    invocation = parse_invocation(argv)
    config = invocation.config
    if invocation.inspect:
        from ..training.inspection import inspect_data

        return inspect_data(config, examples=invocation.inspect_examples)

    try:
        if needs_launcher(invocation.launch, config):
            # Bad data stops here, once, before any process starts or any model loads.
            load_split(config)
            load_split(config, evaluation=True)
            launch_options = invocation.launch
            say(f"starting {launch_options.nproc_per_node * launch_options.nnodes} processes"
                + (f" on {launch_options.nnodes} nodes" if launch_options.nnodes > 1 else ""))
            code = launch(launch_options, config, debug=debug)
        else:
            run_training(config, on_progress=ProgressPrinter(note=say))
            code = EXIT_OK
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED:
        say(f"interrupted; run the same command to resume from the newest checkpoint in {config.output_dir}")
    return code
