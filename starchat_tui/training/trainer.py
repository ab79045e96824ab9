"""One training run, in one process of possibly many: data, tokenizer, model, Trainer, the saved model.

The order matters: the data is validated before anything slow loads; TrainingArguments exist before the
model loads, so ZeRO-3 partitions the weights as they load; the embeddings are resized before the
Trainer wraps the model; and the final save runs on every rank (ZeRO-3 gathers the weights), while only
the main process writes files.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelLoadError, UsageError
from . import distributed
from .checkpoints import resolve_resume
from .config import TRAINING_FIXED, TrainConfig, training_fields
from .data import Dialogues, load_dialogues, raise_for_problems
from .ds_config import check_deepspeed, resolve_deepspeed
from .prepare import build_dataset, encode_split
from .tokens import generation_config_for, prepare_tokenizer, resize_embeddings, token_ids, write_dialogue_template

if TYPE_CHECKING:
    from .progress import OnProgress

MODEL_CARD = """\
---
library_name: transformers
base_model: {base}
tags: [starchat-tui, starchat]
---
# {name}

Fine-tuned from `{base}` with `starchat-tui train` on {dialogues:,} dialogues from `{data}`
({steps:,} steps). It speaks the StarChat dialogue format (`<|system|>`, `<|user|>`, `<|assistant|>`,
each turn closed by `<|end|>`); the tokenizer carries the chat template and the generation config stops at
`<|end|>`.

    starchat-tui -m {path}
"""


def load_split(config: TrainConfig, *, evaluation: bool = False) -> Dialogues | None:
    """The validated dialogues of the train split, or of the eval split when one is configured."""
    data = config.data
    if evaluation:
        if not (data.eval_split or data.eval_dataset_name):
            return None
        source, split, limit = data.eval_dataset_name or data.dataset_name, data.eval_split or "train", data.max_eval_samples
    else:
        source, split, limit = data.dataset_name, data.dataset_split, data.max_train_samples
    dialogues = load_dialogues(source, data.columns(), config=data.dataset_config, split=split, limit=limit)
    raise_for_problems(dialogues, skip_invalid=data.skip_invalid)
    if not dialogues.messages:
        raise UsageError(f"{source}: no dialogue with an assistant reply to train on ({dialogues.summary()})")
    return dialogues


def load_tokenizer(config: TrainConfig):
    from transformers import AutoTokenizer

    name = config.model.tokenizer_name or config.model.model_name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            name, revision=config.model.model_revision, trust_remote_code=config.model.trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"could not load the tokenizer of {name}: {error}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"{name} has only a slow tokenizer; training needs a fast (tokenizers) one")
    return tokenizer


def model_positions(config: TrainConfig) -> int | None:
    """How many positions the model can attend over, from its config (None if it does not say)."""
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(
            config.model.model_name_or_path, revision=config.model.model_revision,
            trust_remote_code=config.model.trust_remote_code,
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"could not load model {config.model.model_name_or_path}: {error}") from None
    text_config = model_config.get_text_config()
    for key in ("max_position_embeddings", "n_positions", "seq_length"):
        value = getattr(text_config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def load_model(config: TrainConfig):
    import torch
    from transformers import AutoModelForCausalLM

    options = config.model
    kwargs = {"revision": options.model_revision, "trust_remote_code": options.trust_remote_code}
    if options.dtype != "auto":
        dtype = getattr(torch, options.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise UsageError(f"dtype {options.dtype!r}: use auto, float32, bfloat16 or float16")
        kwargs["dtype"] = dtype
    if options.attn_implementation:
        kwargs["attn_implementation"] = options.attn_implementation
    try:
        return AutoModelForCausalLM.from_pretrained(options.model_name_or_path, **kwargs)
    except (OSError, ValueError, ImportError) as error:
        raise ModelLoadError(f"could not load model {options.model_name_or_path}: {error}") from None


def isolates_packed_sequences(model) -> bool:
    """Whether this model keeps packed dialogues apart given restarting position ids.

    FlashAttention does it with variable-length kernels; otherwise the model must build its mask with
    transformers' masking utilities, which read the restarts as boundaries. Older or remote-code models
    that build their own mask would let packed dialogues attend to each other, so they train unpacked.
    """
    import inspect

    implementation = str(getattr(model.config, "_attn_implementation", "") or "")
    if "flash" in implementation:
        return True
    try:
        source = inspect.getsource(sys.modules[type(model).__module__])
    except (OSError, TypeError, KeyError):
        return False
    return "create_causal_mask" in source


def wrap_lora(model, config: TrainConfig, new_token_ids: list[int]):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise UsageError("use_peft needs the peft package: pip install peft") from None
    options = config.model
    targets = [t.strip() for t in options.lora_target_modules.split(",")] if options.lora_target_modules else "all-linear"
    extra = {}
    if new_token_ids:
        # The embedding rows of the tokens we added start untrained; LoRA alone would never train them.
        extra["trainable_token_indices"] = new_token_ids
    lora = LoraConfig(
        r=options.lora_r, lora_alpha=options.lora_alpha, lora_dropout=options.lora_dropout,
        target_modules=targets, task_type="CAUSAL_LM", **extra,
    )
    return get_peft_model(model, lora)


def build_training_arguments(config: TrainConfig, overrides: dict):
    from transformers import TrainingArguments

    known = training_fields()
    fixed = {k: v for k, v in TRAINING_FIXED.items() if k in known}  # older transformers lack some
    kwargs = {**config.training, **fixed, **overrides}
    kwargs["deepspeed"] = resolve_deepspeed(kwargs.get("deepspeed"))
    try:
        return TrainingArguments(**kwargs)
    except (ValueError, TypeError) as error:
        raise UsageError(f"invalid training settings: {error}") from None


def save_final(trainer, tokenizer, config: TrainConfig, *, peft: bool, dialogues: int) -> Path:
    """The trained model as a standard Hugging Face folder in output_dir, ready to chat with."""
    output_dir = Path(trainer.args.output_dir)
    model = trainer.model
    if peft:
        model = model.merge_and_unload()
    model.config.use_cache = True
    model.generation_config = generation_config_for(model, tokenizer)
    if peft:
        model.save_pretrained(output_dir)
    else:
        trainer.save_model(str(output_dir))  # every rank: ZeRO-3 gathers the 16-bit weights here
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(output_dir)
        write_dialogue_template(output_dir)
        (output_dir / "README.md").write_text(MODEL_CARD.format(
            base=config.model.model_name_or_path, name=output_dir.name, dialogues=dialogues,
            data=config.data.dataset_name, steps=trainer.state.global_step, path=output_dir,
        ))
    return output_dir


def effective_max_length(config: TrainConfig, say=None) -> int:
    """``max_length``, lowered to the model's positions when it asks for more than the model has."""
    positions = model_positions(config)
    max_length = config.data.max_length
    if positions and max_length > positions:
        if say:
            say(f"max_length {max_length} is more than the model's {positions} positions; using {positions}")
        return positions
    return max_length


def write_summary(output_dir: Path, trainer, result, progress, train, packing: bool, tokenizer) -> None:
    """``starchat_tui_training.json``: what was trained on and how fast, for the record and the benchmarks."""
    runtime = result.metrics.get("train_runtime") or 0.0
    # This session's tokens over all ranks, without padding; a resumed run counts from where it resumed.
    seen = trainer.state.num_input_tokens_seen - progress.start_tokens
    summary = {
        "steps": trainer.state.global_step, "dialogues": train.stats.dialogues,
        "dataset_tokens": train.stats.tokens, "trained_share": round(1 - train.stats.masked_share, 4),
        "packing": packing, "sequences": train.stats.sequences,
        "padding_waste": round(train.stats.waste_packed, 4),
        "tokens_seen": seen, "train_runtime_s": round(runtime, 3),
        "tokens_per_s": round(seen / runtime, 1) if runtime else None,
        "special_token_ids": token_ids(tokenizer),
    }
    (output_dir / "starchat_tui_training.json").write_text(json.dumps(summary, indent=2))


def run_training(config: TrainConfig, *, on_progress: OnProgress | None = None) -> Path:
    """Train as ``config`` says and save the model to its output_dir; returns that folder.

    ``on_progress`` gets every status line and step as a :class:`~.progress.TrainProgress`, from the main
    process only (:class:`~.progress.ProgressPrinter` draws them as text).
    """
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    from .collator import DialogueCollator
    from .progress import ProgressReporter, TrainProgress

    report = on_progress if on_progress is not None and distributed.is_main_process() else None

    def say(text: str) -> None:
        if report is not None:
            report(TrainProgress("note", text))

    for warning in check_deepspeed(config.training.get("deepspeed")):
        say(f"warning: {warning}")
    # Everything that can be wrong with the data is found before anything slow happens.
    train_dialogues = load_split(config)
    eval_dialogues = load_split(config, evaluation=True)
    say(f"data: {train_dialogues.summary()}")
    max_length = effective_max_length(config, say)

    deepspeed = bool(config.training.get("deepspeed"))
    args = build_training_arguments(config, distributed.prepare(deepspeed))  # before the model: ZeRO-3
    try:
        tokenizer = load_tokenizer(config)
        changes = prepare_tokenizer(tokenizer)
        for line in changes.describe():
            say(line)
        train = encode_split(tokenizer, train_dialogues, max_length)
        evaluation = encode_split(tokenizer, eval_dialogues, max_length) if eval_dialogues else None
        if not train.examples:
            raise UsageError(f"no dialogue keeps any reply within max_length {max_length}; raise max_length")

        say(f"loading {config.model.model_name_or_path}")
        model = load_model(config)
        model.config.use_cache = False  # no KV cache in training; it would also hide packed boundaries
        resized = resize_embeddings(model, tokenizer)  # before the Trainer wraps the model
        if resized:
            say(f"resized the embeddings to {resized:,} tokens")
        packing = config.data.packing
        if packing and not isolates_packed_sequences(model):
            say(f"{type(model).__name__} cannot keep packed dialogues apart; training unpacked")
            packing = False
        batch = args.per_device_train_batch_size
        train_rows = build_dataset(train, packing=packing, batch_size=batch)
        eval_rows = build_dataset(evaluation, packing=packing, batch_size=batch) if evaluation else None
        for line in train.stats.lines(batch):
            say(line)
        if config.model.use_peft:
            model = wrap_lora(model, config, [tokenizer.convert_tokens_to_ids(t) for t in changes.added])

        progress = ProgressReporter(report or (lambda event: None))
        trainer = Trainer(
            model=model, args=args, train_dataset=train_rows, eval_dataset=eval_rows,
            data_collator=DialogueCollator(tokenizer.pad_token_id), processing_class=tokenizer,
            callbacks=[progress],
        )
        trainer.remove_callback(PrinterCallback)
        trainer.remove_callback(ProgressCallback)

        resume = resolve_resume(config.resume, args.output_dir)
        if resume is not None:
            say(f"resuming from {resume}")
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        output_dir = save_final(trainer, tokenizer, config, peft=config.model.use_peft,
                                dialogues=train.stats.dialogues)
        if trainer.is_world_process_zero():
            write_summary(output_dir, trainer, result, progress, train, packing, tokenizer)
        if args.push_to_hub:
            say("pushing to the Hub")
            trainer.push_to_hub()
        if report is not None:
            report(TrainProgress("saved", f"saved the model to {output_dir}; chat with it: starchat-tui -m {output_dir}",
                                 path=str(output_dir)))
        return output_dir
    finally:
        if deepspeed:
            distributed.shutdown()


def quiet_libraries() -> None:
    """Keep stderr to our progress bar and the errors that matter."""
    import logging

    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")  # say it before DeepSpeed guesses, and warns
    import transformers

    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.distributed")
    warnings.filterwarnings("ignore", message=r".*reduce_scatter_tensor.*|.*all_gather_into_tensor.*")
    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
