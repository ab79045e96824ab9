"""Training throughput against TRL's SFTTrainer, and padding waste with and without packing.

Both trainers fine-tune the same untrained GPTBigCode (2 layers, 128 wide) on the same 200 synthetic
multi-turn dialogues (about 20 to 500 tokens each), one epoch, batches of 4 sequences of up to 512
tokens, fp32 on this machine's CPU. Tokens/s counts real tokens only (no padding), from each Trainer's
own ``num_input_tokens_seen`` over its ``train_runtime`` (model loading and data preparation excluded).
Each configuration runs twice, interleaved, and keeps its faster run.

starchat-tui trains only the replies (user turns masked) and never lets packed dialogues attend to each
other; TRL is run as its defaults do for this data, loss on every token, with its boundary-aware BFD
packing. The goal (issue 5) is at least 1.0x TRL's tokens/s with packing, and at most 5 % padding.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
import tempfile
from pathlib import Path

from run import Row

AREA = "training"
DIALOGUES = 200
MAX_LENGTH = 512
BATCH = 4
WORDS = [
    "def", "return", "value", "list", "sort", "the", "items", "of", "a", "for", "in", "range", "print", "x",
    "y", "self", "class", "import", "len", "error", "index", "key", "dict", "string", "number", "loop",
    "while", "if", "else", "true", "false", "none", "file", "open", "read",
]


def make_dialogues(seed: int = 0) -> list[list[dict]]:
    rng = random.Random(seed)

    def text(low, high):
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    dialogues = []
    for _ in range(DIALOGUES):
        messages = [{"role": "system", "content": text(3, 15)}] if rng.random() < 0.3 else []
        for _ in range(rng.choice([1, 1, 1, 2])):
            messages.append({"role": "user", "content": text(5, 40)})
            messages.append({"role": "assistant", "content": text(10, 120)})
        dialogues.append(messages)
    return dialogues


def build_model(folder: Path) -> str:
    from starchat_tui.demo.tiny import build_tiny_model

    return str(build_tiny_model(folder, train_steps=0, n_embd=128, n_layer=2, n_positions=MAX_LENGTH))


def run_ours(model: str, data: Path, out: Path, *, packing: bool) -> dict:
    from starchat_tui.training.config import parse_invocation
    from starchat_tui.training.trainer import run_training

    config = parse_invocation([
        "--model_name_or_path", model, "--dataset_name", str(data), "--output_dir", str(out),
        "--max_length", str(MAX_LENGTH), "--packing", str(packing).lower(), "--num_train_epochs", "1",
        "--per_device_train_batch_size", str(BATCH), "--save_strategy", "no", "--logging_steps", "1000",
        "--no-resume", "--seed", "0",
    ]).config
    folder = run_training(config)
    return json.loads((folder / "starchat_tui_training.json").read_text())


def run_trl(model: str, dialogues: list, out: Path, *, packing: bool) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model)
    config = SFTConfig(
        output_dir=str(out), max_length=MAX_LENGTH, packing=packing, num_train_epochs=1,
        per_device_train_batch_size=BATCH, save_strategy="no", logging_steps=1000, report_to="none",
        include_num_input_tokens_seen="non_padding", disable_tqdm=True, seed=0, dataloader_pin_memory=False,
        bf16=False,
    )
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model), args=config, processing_class=tokenizer,
        train_dataset=datasets.Dataset.from_list([{"messages": d} for d in dialogues]),
    )
    trainer.remove_callback(PrinterCallback)  # its metrics dict on stdout would break the table
    result = trainer.train()
    runtime = result.metrics["train_runtime"]
    return {"tokens_seen": trainer.state.num_input_tokens_seen, "train_runtime_s": runtime,
            "tokens_per_s": trainer.state.num_input_tokens_seen / runtime}


def best(runs: list[dict]) -> dict:
    return max(runs, key=lambda r: r["tokens_per_s"] or 0)


def run() -> list[Row]:
    import logging
    import warnings

    from starchat_tui.training.trainer import quiet_libraries

    quiet_libraries()
    warnings.filterwarnings("ignore")
    if importlib.util.find_spec("datasets"):
        import datasets

        datasets.disable_progress_bars()
    logging.getLogger("trl").setLevel(logging.ERROR)
    have_trl = importlib.util.find_spec("trl") is not None
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = build_model(folder / "model")
        dialogues = make_dialogues()
        data = folder / "data.jsonl"
        data.write_text("".join(json.dumps({"messages": d}) + "\n" for d in dialogues))

        ours = {True: [], False: []}
        theirs = {True: [], False: []}
        for attempt in range(2):
            for packing in (True, False):
                print(f"  {AREA}: run {attempt + 1}/2, packing {packing}", file=sys.stderr, flush=True)
                ours[packing].append(run_ours(model, data, folder / f"ours-{packing}-{attempt}", packing=packing))
                if have_trl:
                    theirs[packing].append(run_trl(model, dialogues, folder / f"trl-{packing}-{attempt}",
                                                   packing=packing))

    for packing, label in ((True, "packed"), (False, "unpacked")):
        mine = best(ours[packing])
        if not have_trl:
            rows.append(Row(AREA, f"training tokens/s, {label}, vs TRL SFTTrainer",
                            f"{mine['tokens_per_s']:,.0f} tok/s; TRL not installed (pip install trl)",
                            ">= 1.0x TRL" if packing else "-", None))
            continue
        other = best(theirs[packing])
        ratio = mine["tokens_per_s"] / other["tokens_per_s"]
        rows.append(Row(
            AREA, f"training tokens/s, {label}, vs TRL SFTTrainer (CPU, fp32)",
            f"{mine['tokens_per_s']:,.0f} vs {other['tokens_per_s']:,.0f} tok/s = {ratio:.2f}x",
            ">= 1.0x" if packing else "-", ratio >= 1.0 if packing else None,
        ))
    packed, unpacked = best(ours[True]), best(ours[False])
    rows.append(Row(AREA, f"padding waste with packing (batches of {BATCH}, {MAX_LENGTH} tokens)",
                    f"{100 * packed['padding_waste']:.1f} %", "<= 5 %", packed["padding_waste"] <= 0.05))
    rows.append(Row(AREA, f"padding waste without packing (batches of {BATCH})",
                    f"{100 * unpacked['padding_waste']:.1f} %", "-", None))
    return rows
