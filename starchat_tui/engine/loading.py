"""Finding and loading a model: a local folder or a Hugging Face Hub id.

Every way this can fail for a reason the user can fix ends in one :class:`ModelLoadError` line that
names the model, says whether it is in the local cache, and what to do.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import DEMO_MODEL, QUANTIZE_CHOICES
from ..errors import ModelLoadError, UsageError
from .render import PromptRenderer, context_limit_of

Progress = Callable[[str], None]

GATED_FIX = "accept its licence on its page, run `hf auth login`, then retry"
WHAT_TO_DO = "use -m PATH for a local model folder, go online once to download it, or drop -m to use the offline demo model"


@dataclass
class ModelSource:
    """Where a model's files come from."""

    name: str  # what the user asked for
    location: str  # the folder or Hub id handed to from_pretrained
    local_files_only: bool


def hub_cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


def looks_like_path(name: str) -> bool:
    """Hub ids are NAME or OWNER/NAME; anything else with a slash is a folder."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).exists()


def is_in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # an invalid repo id is simply not cached
        return False


def resolve_source(name: str) -> ModelSource:
    """Decide where ``name`` loads from: a local folder, the Hugging Face cache, or the Hub."""
    if name == DEMO_MODEL:
        # The demo model is found or built above the engine, which only ever loads folders and Hub ids.
        raise ModelLoadError('"demo" names the offline demo model: load starchat_tui.demo.resolve_model("demo"), '
                             "its folder, or use starchat_tui.load_engine, which does that for you")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelLoadError(f"model folder {path} has no config.json: point -m at a saved transformers model folder")
        return ModelSource(name, str(path), local_files_only=True)
    if looks_like_path(name):
        raise ModelLoadError(f"model folder {name} does not exist; {WHAT_TO_DO}")
    if is_in_hub_cache(name):
        return ModelSource(name, name, local_files_only=True)
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    if offline:
        raise ModelLoadError(
            f"model {name} is not in the local Hugging Face cache ({hub_cache_dir()}) and HF_HUB_OFFLINE is set; "
            f"{WHAT_TO_DO}"
        )
    check_on_hub(name)
    return ModelSource(name, name, local_files_only=False)


def check_on_hub(repo_id: str, timeout: float = 10.0) -> None:
    """Ask the Hub about ``repo_id`` once, so that offline fails in a second, not after minutes of retries."""
    from huggingface_hub import model_info
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    try:
        model_info(repo_id, timeout=timeout)
    except GatedRepoError:
        raise ModelLoadError(f"model {repo_id} is gated on the Hub: {GATED_FIX}") from None
    except RepositoryNotFoundError:
        raise ModelLoadError(
            f"model {repo_id} does not exist on the Hub (or is private: run `hf auth login`) and is not a local folder; "
            "check the name"
        ) from None
    except HFValidationError:
        raise ModelLoadError(f"{repo_id!r} is neither a local folder nor a valid Hub id (OWNER/NAME); check the name") from None
    except Exception as error:  # DNS, refused, proxy, timeout: all mean the same to the user
        raise ModelLoadError(
            f"model {repo_id} is not in the local Hugging Face cache ({hub_cache_dir()}) and the Hub cannot be reached "
            f"({type(error).__name__}); {WHAT_TO_DO}"
        ) from None


def explain_load_failure(source: ModelSource, error: BaseException) -> ModelLoadError:
    """One line for a failed from_pretrained: gone, gated, unreachable, or broken."""
    text = f"{type(error).__name__}: {error}"
    lowered = text.lower()
    if source.local_files_only and source.location == source.name and not Path(source.name).exists():
        where = f"is in the local Hugging Face cache ({hub_cache_dir()}) but its files are incomplete"
    elif "gated" in lowered or "401" in lowered or "403" in lowered:
        return ModelLoadError(f"model {source.name} is gated on the Hub: {GATED_FIX}")
    elif "not a valid model identifier" in lowered or "repository not found" in lowered or "404" in lowered:
        return ModelLoadError(f"model {source.name} does not exist on the Hub or locally; check the name, or {WHAT_TO_DO}")
    elif not Path(source.location).is_dir():
        where = f"is not in the local Hugging Face cache ({hub_cache_dir()}) and the Hub cannot be reached"
    else:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return ModelLoadError(f"model folder {source.location} could not be loaded ({first_line[:200]}); "
                              "check that it is a complete transformers model")
    return ModelLoadError(f"model {source.name} {where}; {WHAT_TO_DO}")


def load_tokenizer(source: ModelSource, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            source.location, local_files_only=source.local_files_only, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise explain_load_failure(source, error) from error


def load_config(source: ModelSource, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(
            source.location, local_files_only=source.local_files_only, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError) as error:
        raise explain_load_failure(source, error) from error


def load_prompt_renderer(name: str, trust_remote_code: bool = False) -> PromptRenderer:
    """Only what rendering a prompt needs: the tokenizer and the context size, no weights."""
    quiet_transformers()
    source = resolve_source(name)
    tokenizer = load_tokenizer(source, trust_remote_code)
    return PromptRenderer(tokenizer, context_limit_of(load_config(source, trust_remote_code), tokenizer))


def choose_device(requested: str | None) -> str:
    import torch

    if requested and requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError(f"--device {requested}: no CUDA GPU is visible to torch; use --device cpu or auto")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def set_cpu_threads(device: str) -> None:
    """On CPU, leave one core to the UI: OpenMP threads spin while they wait, and a busy UI thread
    beside a full set of them slowed decoding several-fold in our measurements. OMP_NUM_THREADS wins.

    It holds with the engine in its own process and a bandwidth-bound model too (StarCoderBase-1B shape,
    2 cores): all cores decoded about 6% faster in a quiet bench, but in the real TUI, with other work on
    the machine, 2 threads gave 1.6, 1.7 and 3.7 tok/s where 1 gave 3.2 to 3.5. Each matrix-vector
    product lasts a fraction of a millisecond and ends at a barrier, so a thread that loses its core for
    one time slice stalls them all. Prefill, made of big products, would gain (1k tokens in 13 s on 2
    threads, 26 s on 1), but the thread count is set once, for both."""
    if device != "cpu" or os.environ.get("OMP_NUM_THREADS"):
        return
    import torch

    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, available - 1))


def choose_dtype(device: str, requested: str | None, quantize: str | None = None) -> Any:
    """The dtype of the weights, or with ``quantize`` of the parts left unquantised and of the activations."""
    import torch

    if requested and requested != "auto":
        dtype = getattr(torch, requested, None)
        if not isinstance(dtype, torch.dtype):
            raise UsageError(f"--dtype {requested}: not a torch dtype; use auto, float32, bfloat16 or float16")
        if quantize == "int8" and device == "cpu" and dtype != torch.bfloat16:
            raise UsageError(f"--quantize int8 with --dtype {requested}: on CPU int8 runs with bfloat16 only (with "
                             f"{requested} every weight is unpacked at every step, slower than no --quantize); drop --dtype")
        return dtype
    if quantize == "int8":
        # quanto's fast CPU kernel (int8 weights times bf16 activations) needs bf16: with fp32 activations it
        # unpacks every weight at every step, 25x slower on the 1B bench shape.
        return torch.bfloat16
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device == "mps":
        return torch.float16
    return torch.float32


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it; a missing parent package counts as missing."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def quantization_config(quantize: str | None, device: str) -> Any:
    if not quantize:
        return None
    if quantize not in QUANTIZE_CHOICES:
        raise UsageError(f"--quantize {quantize}: use int8 (weight-only, any device), or 8bit or 4bit (bitsandbytes, CUDA)")
    if quantize == "int8":
        if not has_module("optimum.quanto"):
            raise ModelLoadError("--quantize int8 needs optimum-quanto: pip install 'starchat-tui[int8]'")
        from transformers import QuantoConfig

        return QuantoConfig(weights="int8")
    if not device.startswith("cuda"):
        raise ModelLoadError(f"--quantize {quantize} needs a CUDA GPU (bitsandbytes); on {device} use --quantize int8, "
                             "or drop --quantize")
    if not has_module("bitsandbytes"):
        raise ModelLoadError(f"--quantize {quantize} needs bitsandbytes: pip install bitsandbytes")
    import torch
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_type="nf4")


def load_model(source: ModelSource, device: str, dtype: Any, quantize: str | None, trust_remote_code: bool) -> Any:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "local_files_only": source.local_files_only,
        "trust_remote_code": trust_remote_code,
    }
    if device.startswith("cuda"):
        kwargs["device_map"] = "auto" if device == "cuda" else device
        kwargs["attn_implementation"] = "sdpa"
    quant = quantization_config(quantize, device)
    if quant is not None:
        kwargs["quantization_config"] = quant
    try:
        model = AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError) as error:
        raise explain_load_failure(source, error) from error
    if "device_map" not in kwargs:
        model.to(device)  # type: ignore[arg-type]  # transformers' stub wraps .to for models
    model.eval()
    return model


def compile_decoding(model: Any) -> None:
    """Have ``generate`` run its decode steps through torch.compile whenever it is handed a StaticCache.

    That is transformers' own auto-compile. On CPU it runs only with CompileConfig's private
    ``_compile_all_devices`` set: transformers has no public switch for it.
    """
    from transformers import CompileConfig

    on_cuda = model.device.type == "cuda"
    # CUDA graphs ("reduce-overhead") are what pays on a GPU; on CPU inductor would only warn that it skips them.
    config = CompileConfig(mode="reduce-overhead" if on_cuda else "default")
    config._compile_all_devices = True  # type: ignore[assignment]  # declared as a None class default
    model.generation_config.compile_config = config


def quiet_transformers(device: str | None = None) -> None:
    """Keep library chatter off stderr: in print mode stderr is for our progress and warnings."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if device == "cpu":
        # accelerate imports DeepSpeed when it is installed, which warns that it picked the CPU; say it first.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from transformers.utils import logging

    logging.set_verbosity_error()
    if not sys.stderr.isatty():
        # Progress bars redraw with carriage returns: noise in a log file, and under a full-screen app.
        logging.disable_progress_bar()
