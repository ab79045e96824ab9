"""StarChat tokens on a base model that lacks them: added in order, embeddings resized, pad never <|end|>."""

from __future__ import annotations

import json

from starchat_tui.chat.template import CHAT_TEMPLATE, END_TOKEN, SPECIAL_TOKENS
from starchat_tui.training.tokens import (
    dialogue_template,
    generation_config_for,
    prepare_tokenizer,
    resize_embeddings,
    token_ids,
    write_dialogue_template,
)

CORPUS = ["def add(a, b):\n    return a + b\n", "How do I sort a list? Use sorted(items).", "hello world " * 5]


def base_tokenizer(*, eos="<|endoftext|>", specials=("<|endoftext|>",)):
    """A StarCoder-like byte-level BPE tokenizer with none of the StarChat tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=400, special_tokens=list(specials), initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    ))
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token=eos, bos_token=eos)


def build_base_model(folder, *, n_embd: int = 32) -> int:
    """A StarCoder-like base model folder without the StarChat tokens; returns its vocabulary size."""
    import torch
    from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM

    torch.manual_seed(0)
    tokenizer = base_tokenizer()
    config = GPTBigCodeConfig(vocab_size=len(tokenizer), n_embd=n_embd, n_layer=1, n_head=2, n_positions=256)
    GPTBigCodeForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return len(tokenizer)


def test_missing_tokens_are_added_in_starchat_order():
    tokenizer = base_tokenizer()
    before = len(tokenizer)
    assert END_TOKEN not in tokenizer.get_vocab()
    changes = prepare_tokenizer(tokenizer)
    assert changes.added == list(SPECIAL_TOKENS)
    # On StarCoder's 49,152 tokens this order gives <|end|> = 49155, the id the released models use.
    assert list(token_ids(tokenizer).values()) == list(range(before, before + 4))
    assert tokenizer.pad_token == "<|endoftext|>" and not changes.pad_added
    assert tokenizer.chat_template == CHAT_TEMPLATE
    assert tokenizer("a<|end|>b", add_special_tokens=False)["input_ids"][1] == before + 3
    assert prepare_tokenizer(tokenizer).added == []  # idempotent


def test_pad_is_never_end():
    tokenizer = base_tokenizer(eos=END_TOKEN, specials=(END_TOKEN,))
    tokenizer.pad_token = END_TOKEN
    changes = prepare_tokenizer(tokenizer)
    assert tokenizer.pad_token != END_TOKEN
    assert changes.pad_added and tokenizer.pad_token == "<|pad|>"
    assert tokenizer.pad_token_id not in token_ids(tokenizer).values()


def test_resize_grows_tied_embeddings_with_sensible_rows():
    import torch
    from transformers import GPTBigCodeConfig, GPTBigCodeForCausalLM

    tokenizer = base_tokenizer()
    model = GPTBigCodeForCausalLM(GPTBigCodeConfig(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2))
    old = model.get_input_embeddings().weight.detach().clone()
    assert resize_embeddings(model, tokenizer) is None  # nothing to do yet
    prepare_tokenizer(tokenizer)
    assert resize_embeddings(model, tokenizer) == len(tokenizer)
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == len(tokenizer) == model.config.vocab_size
    assert model.get_output_embeddings().weight.data_ptr() == weight.data_ptr()  # still tied
    torch.testing.assert_close(weight[: old.shape[0]], old)
    new = weight[old.shape[0]:]
    assert torch.isfinite(new).all()
    assert new.norm(dim=1).mean() < 3 * old.norm(dim=1).mean()  # near the old rows, not wild noise


def test_generation_config_stops_at_end_then_end_of_text(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = generation_config_for(model, tokenizer)
    end = tokenizer.convert_tokens_to_ids(END_TOKEN)
    assert config.eos_token_id == [end, tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    assert config.use_cache is True and config.pad_token_id != end


def test_dialogue_template_is_the_released_file(tmp_path):
    path = write_dialogue_template(tmp_path)
    assert len(path.read_bytes()) == 162  # byte for byte the size of starchat-alpha's
    assert json.loads(path.read_text()) == dialogue_template()
    assert dialogue_template()["end_token"] == END_TOKEN


def test_training_a_base_model_without_the_tokens_gives_a_chat_model(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from starchat_tui import Conversation, load_engine
    from starchat_tui.training.config import parse_invocation
    from starchat_tui.training.trainer import run_training

    base = tmp_path / "base"
    vocab = build_base_model(base)
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "hello world"}]}) + "\n")
    config = parse_invocation(["--model_name_or_path", str(base), "--dataset_name", str(data),
                               "--output_dir", str(tmp_path / "out"), "--max_steps", "2", "--save_strategy", "no"]).config
    notes: list[str] = []
    folder = run_training(config, on_progress=lambda event: notes.append(event.text) if event.kind == "note" else None)
    assert "added the special tokens <|system|>, <|user|>, <|assistant|>, <|end|> to the tokenizer" in notes
    assert f"resized the embeddings to {vocab + 4:,} tokens" in notes

    trained_tokenizer = AutoTokenizer.from_pretrained(folder)
    assert list(token_ids(trained_tokenizer).values()) == list(range(vocab, vocab + 4))
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.vocab_size == len(trained_tokenizer) == vocab + 4
    assert model.generation_config.eos_token_id == [vocab + 3, trained_tokenizer.eos_token_id]

    engine = load_engine(str(folder), device="cpu")
    conversation = Conversation()
    conversation.add("user", "hi")
    list(engine.stream(conversation, temperature=0, max_new_tokens=4))
    assert conversation.messages[-1]["role"] == "assistant"
